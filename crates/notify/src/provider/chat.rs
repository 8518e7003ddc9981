//! Chat services: Slack (webhooks and Slack apps), Discord and Rocket.Chat (Slack-compatible
//! hooks), Microsoft Teams (Adaptive Cards; the retired connector cards for
//! `*.webhook.office.com`), Google Chat cards, Webex, Telegram, Matrix and Lark.

use serde_json::{Value, json};

use super::{Error, Method, Request, ResponseCheck, Settings, fields, request_uri};
use crate::event::{Event, META_CHANGE_REQUEST, META_SUMMARY, SEVERITY_ERROR};

/// Slack's Web API method a Slack app posts to (with a bot token).
const SLACK_POST_MESSAGE: &str = "https://slack.com/api/chat.postMessage";
/// Telegram's Bot API; the token is part of the path.
const TELEGRAM_API: &str = "https://api.telegram.org/bot";

fn error(event: &Event) -> bool {
    event.severity == SEVERITY_ERROR
}

/// Slack's legacy attachment (also taken by Discord's and Rocket.Chat's Slack endpoints).
fn attachment(event: &Event, color: &str, fallback: Option<String>) -> Value {
    let fields: Vec<Value> = fields(event)
        .map(|(k, v)| json!({"title": k, "value": v, "short": false}))
        .collect();
    let mut a = json!({
        "color": color,
        "author_name": event.involved_object.title(),
        "text": event.message,
        "mrkdwn_in": ["text"],
        "fields": fields,
    });
    if let (Some(fallback), Some(object)) = (fallback, a.as_object_mut()) {
        object.insert("fallback".into(), fallback.into());
    } else if let Some(object) = a.as_object_mut() {
        object.insert("fallback".into(), "".into());
    }
    a
}

fn slack_payload(channel: &str, username: &str, attachment: Value) -> Value {
    json!({
        "channel": channel,
        "username": username,
        "icon_url": "",
        "icon_emoji": "",
        "attachments": [attachment],
    })
}

/// Slack: an attachment coloured `good`/`danger`; with a token, `Authorization: Bearer`, and
/// for a Slack app (`chat.postMessage`) the answer's `ok` is checked.
pub(super) fn slack(settings: &Settings, event: &Event) -> Result<Request, Error> {
    let url = request_uri(&settings.address, "Slack hook")?;
    let username = if settings.username.is_empty() {
        event.reporting_controller.as_str()
    } else {
        settings.username.as_str()
    };
    let color = if error(event) { "danger" } else { "good" };
    let first_line = event.message.split('\n').next().unwrap_or_default();
    let fallback = format!("{}: {first_line}", event.involved_object.title());
    let payload = slack_payload(
        &settings.channel,
        username,
        attachment(event, color, Some(fallback)),
    );
    let mut request = Request::json(url, &payload);
    if let Some(token) = settings.token.as_deref().filter(|t| !t.is_empty()) {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    if request.url == SLACK_POST_MESSAGE {
        request.check = ResponseCheck::SlackOk;
    }
    Ok(request)
}

/// Discord: its Slack-compatible endpoint (`<webhook>/slack`).
pub(super) fn discord(settings: &Settings, event: &Event) -> Result<Request, Error> {
    let mut url = request_uri(&settings.address, "Discord hook")?;
    if !url.ends_with("/slack") {
        url = format!("{}/slack", url.trim_end_matches('/'));
    }
    let username = if settings.username.is_empty() {
        event.reporting_controller.as_str()
    } else {
        settings.username.as_str()
    };
    let color = if error(event) { "danger" } else { "good" };
    Ok(Request::json(
        url,
        &slack_payload("", username, attachment(event, color, None)),
    ))
}

/// Rocket.Chat: a Slack-shaped message with Rocket's colours.
pub(super) fn rocket(settings: &Settings, event: &Event) -> Result<Request, Error> {
    let url = request_uri(&settings.address, "Rocket hook")?;
    let color = if error(event) { "#FF0000" } else { "#0076D7" };
    Ok(Request::json(
        url,
        &slack_payload(
            &settings.channel,
            &settings.username,
            attachment(event, color, None),
        ),
    ))
}

/// Microsoft Teams: an Adaptive Card (Power Automate workflows); the retired Office 365
/// connector's MessageCard for `*.webhook.office.com` hooks.
pub(super) fn msteams(settings: &Settings, event: &Event) -> Result<Request, Error> {
    let url = request_uri(&settings.address, "MS Teams webhook")?;
    let host = url
        .split_once("://")
        .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or_default())
        .unwrap_or_default();
    let host = host.rsplit('@').next().unwrap_or(host);
    let hostname = host.split(':').next().unwrap_or(host);
    let title = event.involved_object.title();
    let payload = if hostname.ends_with(".webhook.office.com") {
        let facts: Vec<Value> = fields(event)
            .map(|(k, v)| json!({"name": k, "value": v}))
            .collect();
        json!({
            "@type": "MessageCard",
            "@context": "http://schema.org/extensions",
            "themeColor": if error(event) { "FF0000" } else { "0076D7" },
            "summary": title,
            "sections": [{"activityTitle": event.message, "activitySubtitle": title, "facts": facts}],
        })
    } else {
        adaptive_card(event, &title)
    };
    Ok(Request::json(url, &payload))
}

fn adaptive_card(event: &Event, title: &str) -> Value {
    // The summary first, then the other metadata by key.
    let summary = event
        .metadata
        .get(META_SUMMARY)
        .map(|v| json!({"title": META_SUMMARY, "value": v}));
    let facts: Vec<Value> = summary
        .into_iter()
        .chain(
            fields(event)
                .filter(|(k, _)| k.as_str() != META_SUMMARY)
                .map(|(k, v)| json!({"title": k, "value": v})),
        )
        .collect();
    let mut message = json!({"type": "TextBlock", "text": event.message, "wrap": true});
    if error(event)
        && let Some(m) = message.as_object_mut()
    {
        m.insert("color".into(), "attention".into());
    }
    let mut fact_set = json!({"type": "FactSet"});
    if !facts.is_empty()
        && let Some(f) = fact_set.as_object_mut()
    {
        f.insert("facts".into(), facts.into());
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [{
                    "type": "Container",
                    "items": [
                        {"type": "TextBlock", "text": title, "size": "large", "weight": "bolder", "wrap": true},
                        message,
                        fact_set,
                    ],
                }],
                "msteams": {"width": "Full"},
            },
        }],
    })
}

/// Google Chat: a card with the object as title, the message (red on error) and the metadata
/// as key/value widgets.
pub(super) fn google_chat(settings: &Settings, event: &Event) -> Result<Request, Error> {
    let url = request_uri(&settings.address, "Google Chat hook")?;
    let text = if error(event) {
        format!("<font color=\"#ff0000\">{}</font>", event.message)
    } else {
        event.message.clone()
    };
    let mut sections = vec![json!({
        "header": "",
        "widgets": [{"textParagraph": {"text": text}, "keyValue": null}],
    })];
    if !event.metadata.is_empty() {
        let widgets: Vec<Value> = fields(event)
            .map(|(k, v)| {
                json!({"textParagraph": null, "keyValue": {
                    "topLabel": k, "content": v, "contentMultiline": false,
                    "bottomLabel": null, "icon": null}})
            })
            .collect();
        sections.push(json!({"header": "", "widgets": widgets}));
    }
    let payload = json!({"cards": [{
        "header": {"title": event.involved_object.title(), "subtitle": event.reporting_controller,
            "imageUrl": null, "imageStyle": null},
        "sections": sections,
    }]});
    Ok(Request::json(url, &payload))
}

/// Webex: Markdown to the room `spec.channel`, with the bot token.
pub(super) fn webex(settings: &Settings, event: &Event) -> Result<Request, Error> {
    let url = request_uri(&settings.address, "Webex hook")?;
    let emoji = if error(event) { "💣" } else { "✅" };
    let mut markdown = format!(
        "{emoji} **{}**\n{}\n",
        event.involved_object.title(),
        event.message
    );
    for (k, v) in fields(event) {
        markdown.push_str(&format!(">**{k}**: {v}\n"));
    }
    let mut payload = json!({"markdown": markdown});
    if !settings.channel.is_empty()
        && let Some(p) = payload.as_object_mut()
    {
        p.insert("roomId".into(), settings.channel.clone().into());
    }
    let token = settings.token.as_deref().unwrap_or_default();
    Ok(Request::json(url, &payload).header("Authorization", format!("Bearer {token}")))
}

/// Telegram's MarkdownV2 escaping.
fn telegram_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.-_[]()~>`#+=|{}!*".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Telegram: `sendMessage` of the bot `token` to the chat `spec.channel` (`chat` or
/// `chat:thread`), in MarkdownV2.
pub(super) fn telegram(settings: &Settings, event: &Event) -> Result<Request, Error> {
    if settings.channel.is_empty() {
        return Err(Error::Invalid("empty Telegram channel".into()));
    }
    let token = settings
        .token
        .as_deref()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::Invalid("empty Telegram token".into()))?;
    let emoji = if error(event) { "🚨" } else { "💫" };
    let o = &event.involved_object;
    let heading = format!(
        "{emoji} {}/{}/{}",
        o.kind.to_lowercase(),
        o.name,
        o.namespace
    );
    let metadata: String = fields(event)
        .map(|(k, v)| format!("\\- *{}*: {}\n", telegram_escape(k), telegram_escape(v)))
        .collect();
    let text = format!(
        "*{}*\n{}\n{metadata}",
        telegram_escape(&heading),
        telegram_escape(&event.message)
    );
    let (chat, thread) = match settings.channel.split_once(':') {
        Some((chat, thread)) => (chat, Some(thread)),
        None => (settings.channel.as_str(), None),
    };
    let mut payload = json!({"chat_id": chat, "text": text, "parse_mode": "MarkdownV2"});
    if let (Some(thread), Some(p)) = (thread, payload.as_object_mut()) {
        p.insert("message_thread_id".into(), thread.into());
    }
    Ok(Request::json(
        format!("{TELEGRAM_API}{token}/sendMessage"),
        &payload,
    ))
}

/// Matrix: a PUT of an `m.text` message to the room `spec.channel`, with the SHA-1 of the
/// event as transaction id.
pub(super) fn matrix(settings: &Settings, event: &Event) -> Result<Request, Error> {
    use sha1::Digest;
    let server = request_uri(&settings.address, "Matrix homeserver")?;
    let tx = data_encoding::HEXLOWER.encode(&sha1::Sha1::digest(event.to_json()));
    let emoji = if error(event) { "🚨" } else { "💫" };
    let metadata: String = fields(event)
        .map(|(k, v)| format!("- {k}: {v}\n"))
        .collect();
    let body = format!(
        "{emoji} {}\n{}\n{metadata}",
        event.involved_object.title(),
        event.message
    );
    let url = format!(
        "{server}/_matrix/client/r0/rooms/{}/send/m.room.message/{tx}",
        settings.channel
    );
    let token = settings.token.as_deref().unwrap_or_default();
    let mut request = Request::json(url, &json!({"body": body, "msgtype": "m.text"}))
        .header("Authorization", format!("Bearer {token}"));
    request.method = Method::Put;
    Ok(request)
}

/// Lark: an interactive card, turquoise or red.
pub(super) fn lark(settings: &Settings, event: &Event) -> Result<Request, Error> {
    let url = request_uri(&settings.address, "Lark hook")?;
    let (emoji, color) = if error(event) {
        ("🚨", "red")
    } else {
        ("💫", "turquoise")
    };
    let mut content = format!("**{}**\n\n", event.message);
    for (k, v) in fields(event) {
        content.push_str(&format!("{k}: {v}\n"));
    }
    let payload = json!({
        "msg_type": "interactive",
        "card": {
            "config": {"wide_screen_mode": true},
            "header": {
                "title": {"tag": "plain_text",
                    "content": format!("{emoji} {}", event.involved_object.title())},
                "template": color,
            },
            "elements": [{"tag": "div", "text": {"tag": "lark_md", "content": content}}],
        },
    });
    Ok(Request::json(url, &payload))
}

/// Zoom Team Chat: an incoming webhook message (`format=full`) with the verification token as
/// `Authorization`.
pub(super) fn zoom(settings: &Settings, event: &Event) -> Result<Request, Error> {
    let mut url = request_uri(&settings.address, "Zoom incoming webhook")?;
    let token = settings
        .token
        .as_deref()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::Invalid("empty Zoom verification token".into()))?;
    let has_format = url.split_once('?').is_some_and(|(_, q)| {
        q.split('&')
            .any(|p| p.starts_with("format=") && p.len() > 7)
    });
    if !has_format {
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str("format=full");
    }
    let mut body = vec![json!({"type": "message", "text": event.message})];
    if !event.metadata.is_empty() {
        let items: Vec<Value> = fields(event)
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect();
        body.push(json!({"type": "fields", "items": items}));
    }
    let payload = json!({"content": {
        "head": {"text": event.involved_object.title(), "sub_head": {"text": event.severity}},
        "body": body,
    }});
    Ok(Request::json(url, &payload).header("Authorization", token))
}

/// Flux's `formatMarkdownPost`: a heading, the severity's emoji and `Kind/namespace/name`, the
/// message, then the metadata in key order (less the change request key).
pub fn markdown_post(event: &Event) -> String {
    let emoji = if error(event) { "⚠️" } else { "ℹ️" };
    let o = &event.involved_object;
    let mut metadata = String::new();
    for (key, value) in fields(event).filter(|(k, _)| k.as_str() != META_CHANGE_REQUEST) {
        metadata.push_str(&format!("* `{key}`: {value}\n"));
    }
    format!(
        "## Flux Status\n\n{emoji} {}/{}/{}\n\n{}\n\nMetadata:\n{metadata}",
        o.kind, o.namespace, o.name, event.message
    )
}

/// Zulip: a stream message (form-encoded) to `/api/v1/messages` of the address's host, the
/// channel `<stream>/<topic>`, the Markdown post as content, Basic auth of the bot's email
/// and API key.
pub(super) fn zulip(settings: &Settings, event: &Event) -> Result<Request, Error> {
    use base64::Engine as _;
    let url = request_uri(&settings.address, "Zulip endpoint")?;
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| Error::Invalid("invalid Zulip endpoint URL".into()))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let (stream, topic) = settings
        .channel
        .split_once('/')
        .filter(|(s, t)| !s.is_empty() && !t.is_empty())
        .ok_or_else(|| {
            Error::Invalid(format!(
                "invalid Zulip channel format, expected <channel>/<topic>, got '{}'",
                settings.channel
            ))
        })?;
    // Go's url.Values.Encode: keys in order.
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("content", &markdown_post(event))
        .append_pair("to", stream)
        .append_pair("topic", topic)
        .append_pair("type", "stream")
        .finish();
    let mut headers = vec![(
        "Content-Type".to_string(),
        "application/x-www-form-urlencoded".to_string(),
    )];
    if !settings.username.is_empty() || !settings.password.is_empty() {
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", settings.username, settings.password));
        headers.push(("Authorization".into(), format!("Basic {basic}")));
    }
    Ok(Request {
        method: Method::Post,
        url: format!("{scheme}://{host}/api/v1/messages"),
        headers,
        body: body.into_bytes(),
        check: ResponseCheck::Success,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{merged_event, requests, settings};
    use super::*;

    fn one(s: &Settings) -> Request {
        let mut all = requests(s, &merged_event()).expect("builds");
        assert_eq!(all.len(), 1);
        all.remove(0)
    }

    #[test]
    fn zulip_posts_a_markdown_stream_message() {
        let mut s = settings("zulip", "https://chat.example/ignored");
        s.channel = "general".into();
        assert!(requests(&s, &merged_event()).is_err(), "<stream>/<topic>");
        s.channel = "flux/alerts".into();
        s.username = "bot@chat.example".into();
        s.password = "key".into();
        let r = &requests(&s, &merged_event()).expect("builds")[0];
        assert_eq!(r.url, "https://chat.example/api/v1/messages");
        assert_eq!(
            r.header_value("Content-Type"),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(
            r.header_value("Authorization"),
            Some("Basic Ym90QGNoYXQuZXhhbXBsZTprZXk=")
        );
        let form: std::collections::BTreeMap<String, String> =
            form_urlencoded::parse(&r.body).into_owned().collect();
        assert_eq!(form["type"], "stream");
        assert_eq!(form["to"], "flux");
        assert_eq!(form["topic"], "alerts");
        assert_eq!(
            form["content"],
            "## Flux Status\n\n⚠️ Kustomization/apps/podinfo\n\nDeployment/apps/podinfo dry-run failed\n\nMetadata:\n* `revision`: main@sha1:8a7b1c\n* `summary`: Cluster eu-1\n"
        );
        assert!(String::from_utf8_lossy(&r.body).starts_with("content="));
    }

    #[test]
    fn slack_sends_an_attachment_and_a_slack_app_uses_the_token() {
        let mut s = settings("slack", "https://hooks.slack.com/services/T/B/X");
        s.channel = "general".into();
        let r = one(&s);
        assert_eq!(r.check, ResponseCheck::Success);
        assert_eq!(
            r.json_body(),
            json!({
                "channel": "general", "username": "kustomize-controller",
                "icon_url": "", "icon_emoji": "",
                "attachments": [{
                    "fallback": "kustomization/podinfo.apps: Deployment/apps/podinfo dry-run failed",
                    "color": "danger", "author_name": "kustomization/podinfo.apps",
                    "text": "Deployment/apps/podinfo dry-run failed", "mrkdwn_in": ["text"],
                    "fields": [
                        {"title": "revision", "value": "main@sha1:8a7b1c", "short": false},
                        {"title": "summary", "value": "Cluster eu-1", "short": false}
                    ]
                }]
            })
        );
        assert_eq!(r.header_value("Authorization"), None);
        s.address = SLACK_POST_MESSAGE.into();
        s.token = Some("xoxb-1".into());
        let app = one(&s);
        assert_eq!(app.header_value("Authorization"), Some("Bearer xoxb-1"));
        assert_eq!(app.check, ResponseCheck::SlackOk);
    }

    #[test]
    fn discord_and_rocket_use_slack_shapes() {
        let d = one(&settings(
            "discord",
            "https://discord.com/api/webhooks/1/abc",
        ));
        assert_eq!(d.url, "https://discord.com/api/webhooks/1/abc/slack");
        assert_eq!(d.json_body()["attachments"][0]["color"], "danger");
        assert_eq!(d.json_body()["channel"], "");
        let mut rs = settings("rocket", "https://rocket.example/hooks/x");
        rs.channel = "ops".into();
        let r = one(&rs);
        assert_eq!(r.json_body()["attachments"][0]["color"], "#FF0000");
        assert_eq!(r.json_body()["channel"], "ops");
        assert_eq!(r.json_body()["username"], "");
    }

    #[test]
    fn msteams_sends_an_adaptive_card_with_the_summary_first() {
        let r = one(&settings(
            "msteams",
            "https://prod.westeurope.logic.azure.com/workflows/1",
        ));
        let body = r.json_body();
        let content = &body["attachments"][0]["content"];
        assert_eq!(body["type"], "message");
        assert_eq!(
            body["attachments"][0]["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        assert_eq!(content["type"], "AdaptiveCard");
        assert_eq!(content["version"], "1.4");
        let items = &content["body"][0]["items"];
        assert_eq!(items[0]["text"], "kustomization/podinfo.apps");
        assert_eq!(items[1]["color"], "attention");
        assert_eq!(items[2]["facts"][0]["title"], "summary");
        assert_eq!(items[2]["facts"][1]["title"], "revision");
        let connector = one(&settings(
            "msteams",
            "https://x.webhook.office.com/webhookb2/1",
        ));
        assert_eq!(connector.json_body()["@type"], "MessageCard");
        assert_eq!(connector.json_body()["themeColor"], "FF0000");
    }

    #[test]
    fn google_chat_webex_and_lark_shapes() {
        let g = one(&settings(
            "googlechat",
            "https://chat.googleapis.com/v1/spaces/x",
        ))
        .json_body();
        let card = &g["cards"][0];
        assert_eq!(card["header"]["title"], "kustomization/podinfo.apps");
        assert_eq!(card["header"]["subtitle"], "kustomize-controller");
        assert_eq!(
            card["sections"][0]["widgets"][0]["textParagraph"]["text"],
            "<font color=\"#ff0000\">Deployment/apps/podinfo dry-run failed</font>"
        );
        assert_eq!(
            card["sections"][1]["widgets"][0]["keyValue"]["topLabel"],
            "revision"
        );
        let mut ws = settings("webex", "https://webexapis.com/v1/messages");
        ws.channel = "room-1".into();
        ws.token = Some("bot".into());
        let w = one(&ws);
        assert_eq!(w.header_value("Authorization"), Some("Bearer bot"));
        assert_eq!(
            w.json_body(),
            json!({"roomId": "room-1", "markdown": "💣 **kustomization/podinfo.apps**\nDeployment/apps/podinfo dry-run failed\n>**revision**: main@sha1:8a7b1c\n>**summary**: Cluster eu-1\n"})
        );
        let l = one(&settings(
            "lark",
            "https://open.larksuite.com/open-apis/bot/v2/hook/x",
        ))
        .json_body();
        assert_eq!(l["msg_type"], "interactive");
        assert_eq!(l["card"]["header"]["template"], "red");
        assert_eq!(
            l["card"]["elements"][0]["text"]["content"],
            "**Deployment/apps/podinfo dry-run failed**\n\nrevision: main@sha1:8a7b1c\nsummary: Cluster eu-1\n"
        );
    }

    #[test]
    fn zoom_posts_a_full_format_message_with_the_token() {
        let mut s = settings(
            "zoom",
            "https://integrations.zoom.us/chat/webhooks/incomingwebhook/x",
        );
        s.token = Some("verify".into());
        let z = one(&s);
        assert!(z.url.ends_with("/x?format=full"));
        assert_eq!(z.header_value("Authorization"), Some("verify"));
        let body = z.json_body();
        assert_eq!(
            body["content"]["head"]["text"],
            "kustomization/podinfo.apps"
        );
        assert_eq!(body["content"]["head"]["sub_head"]["text"], "error");
        assert_eq!(body["content"]["body"][1]["items"][0]["key"], "revision");
    }

    #[test]
    fn telegram_escapes_markdown_and_matrix_puts_to_the_room() {
        let mut ts = settings("telegram", "");
        ts.channel = "-100123:7".into();
        assert!(requests(&ts, &merged_event()).is_err(), "no token");
        ts.token = Some("123:abc".into());
        let t = one(&ts);
        assert_eq!(t.url, "https://api.telegram.org/bot123:abc/sendMessage");
        let body = t.json_body();
        assert_eq!(body["chat_id"], "-100123");
        assert_eq!(body["message_thread_id"], "7");
        assert_eq!(body["parse_mode"], "MarkdownV2");
        assert_eq!(
            body["text"],
            "*🚨 kustomization/podinfo/apps*\nDeployment/apps/podinfo dry\\-run failed\n\\- *revision*: main@sha1:8a7b1c\n\\- *summary*: Cluster eu\\-1\n"
        );
        let mut ms = settings("matrix", "https://matrix.example");
        ms.channel = "!room:example".into();
        ms.token = Some("t".into());
        let m = one(&ms);
        assert_eq!(m.method, Method::Put);
        assert!(m.url.starts_with(
            "https://matrix.example/_matrix/client/r0/rooms/!room:example/send/m.room.message/"
        ));
        assert_eq!(m.json_body()["msgtype"], "m.text");
    }
}
