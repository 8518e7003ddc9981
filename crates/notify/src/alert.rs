//! Which Alerts forward an event, as Flux's event server decides: the event sources (kind,
//! namespace defaulting to the Alert's, name or `*`, then `matchLabels`), the severity, the
//! inclusion and exclusion lists (Go RE2; exclusion wins), then the metadata the Provider sees.

use std::collections::BTreeMap;

use ferroflux_api::notification::Alert;

use crate::event::{Event, GROUP, META_SUMMARY, SEVERITY_INFO};

/// Whether an event comes from one of an Alert's sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceMatch {
    /// No source matches.
    No,
    /// A source without `matchLabels` matches.
    Yes,
    /// Sources match by kind, namespace and name, but each has `matchLabels`: the event matches
    /// when the object's labels satisfy any of these selectors.
    IfLabels(Vec<BTreeMap<String, String>>),
}

/// Matches `event` against the sources and severity of `alert` (Flux's
/// `eventMatchesAlertSources`). A suspended Alert matches nothing.
pub fn match_sources(alert: &Alert, event: &Event) -> SourceMatch {
    if alert.spec.suspend == Some(true) {
        return SourceMatch::No;
    }
    let alert_namespace = alert.metadata.namespace.as_deref().unwrap_or_default();
    let severity = alert
        .spec
        .event_severity
        .as_deref()
        .unwrap_or(SEVERITY_INFO);
    // Flux: an Alert of severity `info` takes every event, one of `error` only errors.
    if event.severity != severity && severity != SEVERITY_INFO {
        return SourceMatch::No;
    }
    let object = &event.involved_object;
    let mut selectors = Vec::new();
    for source in &alert.spec.event_sources {
        let namespace = source.namespace.as_deref().unwrap_or(alert_namespace);
        if object.namespace != namespace || object.kind != source.kind {
            continue;
        }
        if source.name != "*" && source.name != object.name {
            continue;
        }
        match &source.match_labels {
            None => return SourceMatch::Yes,
            Some(labels) => selectors.push(labels.clone()),
        }
    }
    if selectors.is_empty() {
        SourceMatch::No
    } else {
        SourceMatch::IfLabels(selectors)
    }
}

/// Whether `labels` satisfy the `matchLabels` selector `selector`.
pub fn labels_match(
    selector: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The verdict of an Alert's inclusion and exclusion lists on a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageVerdict {
    /// Whether the message is forwarded.
    pub forwarded: bool,
    /// Patterns that do not compile (Flux reports each as an `InvalidConfig` Warning and
    /// skips it).
    pub invalid: Vec<String>,
}

/// Applies `spec.inclusionList` (when set, some pattern must match) and `spec.exclusionList`
/// (no pattern may match; it wins over inclusion) to `message`, in Go's regexp syntax.
pub fn filter_message(alert: &Alert, message: &str) -> MessageVerdict {
    let mut invalid = Vec::new();
    // Like Flux, the patterns after the first match are not compiled.
    let mut any_match = |patterns: &[String]| {
        patterns
            .iter()
            .filter_map(|p| match ferroflux_gocompat::regex::compile(p) {
                Ok(re) => Some(re),
                Err(_) => {
                    invalid.push(p.clone());
                    None
                }
            })
            .any(|re| re.is_match(message))
    };
    let included = match alert.spec.inclusion_list.as_deref() {
        None | Some([]) => true,
        Some(patterns) => any_match(patterns),
    };
    let excluded = match alert.spec.exclusion_list.as_deref() {
        None | Some([]) => false,
        Some(patterns) => any_match(patterns),
    };
    MessageVerdict {
        forwarded: included && !excluded,
        invalid,
    }
}

/// A metadata key set by more than one source, with those sources (Flux warns about each).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The key.
    pub key: String,
    /// Where its values came from, lowest precedence first.
    pub sources: Vec<&'static str>,
}

/// Merges the metadata the Provider sees, lowest precedence first (Flux's RFC 0008): event keys
/// under `event.toolkit.fluxcd.io/` (the object's annotations), the Alert's
/// `spec.eventMetadata`, its `spec.summary` as `summary`, then event keys under the object's
/// group; each without its prefix. Returns the keys set more than once.
pub fn combine_metadata(event: &mut Event, alert: &Alert) -> Vec<Conflict> {
    let mut merged = BTreeMap::new();
    let mut sources: BTreeMap<String, Vec<&'static str>> = BTreeMap::new();
    let mut put = |key: &str, value: &str, source: &'static str| {
        merged.insert(key.to_string(), value.to_string());
        sources.entry(key.to_string()).or_default().push(source);
    };
    let event_prefix = format!("{GROUP}/");
    for (k, v) in &event.metadata {
        if let Some(key) = k.strip_prefix(&event_prefix) {
            put(key, v, "involved object annotations");
        }
    }
    for (k, v) in alert.spec.event_metadata.iter().flatten() {
        put(k, v, "Alert object .spec.eventMetadata");
    }
    if let Some(summary) = alert.spec.summary.as_deref().filter(|s| !s.is_empty()) {
        put(META_SUMMARY, summary, "Alert object .spec.summary");
    }
    let object_prefix = format!("{}/", event.involved_object.group());
    for (k, v) in &event.metadata {
        if let Some(key) = k.strip_prefix(&object_prefix) {
            put(key, v, "involved object controller metadata");
        }
    }
    if !merged.is_empty() {
        event.metadata = merged;
    }
    sources
        .into_iter()
        .filter(|(_, s)| s.len() > 1)
        .map(|(key, sources)| Conflict { key, sources })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::kustomization_event;
    use ferroflux_api::notification::{AlertSpec, CrossNamespaceObjectReference};

    fn alert(sources: Vec<CrossNamespaceObjectReference>) -> Alert {
        let mut alert = Alert::new(
            "tenant-failures",
            AlertSpec {
                event_sources: sources,
                ..AlertSpec::default()
            },
        );
        alert.metadata.namespace = Some("apps".into());
        alert
    }

    fn source(kind: &str, name: &str) -> CrossNamespaceObjectReference {
        CrossNamespaceObjectReference {
            kind: kind.into(),
            name: name.into(),
            ..CrossNamespaceObjectReference::default()
        }
    }

    #[test]
    fn sources_match_by_kind_namespace_and_name_or_wildcard() {
        let event = kustomization_event();
        assert_eq!(
            match_sources(&alert(vec![source("Kustomization", "*")]), &event),
            SourceMatch::Yes
        );
        assert_eq!(
            match_sources(&alert(vec![source("Kustomization", "podinfo")]), &event),
            SourceMatch::Yes
        );
        assert_eq!(
            match_sources(&alert(vec![source("Kustomization", "other")]), &event),
            SourceMatch::No
        );
        assert_eq!(
            match_sources(&alert(vec![source("HelmRelease", "*")]), &event),
            SourceMatch::No
        );
        let mut elsewhere = source("Kustomization", "*");
        elsewhere.namespace = Some("flux-system".into());
        assert_eq!(
            match_sources(&alert(vec![elsewhere]), &event),
            SourceMatch::No
        );
        let mut labelled = source("Kustomization", "*");
        labelled.match_labels = Some([("team".to_string(), "a".to_string())].into());
        let SourceMatch::IfLabels(selectors) = match_sources(&alert(vec![labelled]), &event) else {
            panic!("a source with matchLabels needs the labels");
        };
        assert!(labels_match(
            &selectors[0],
            &[("team".into(), "a".into()), ("x".into(), "y".into())].into()
        ));
        assert!(!labels_match(&selectors[0], &BTreeMap::new()));
    }

    #[test]
    fn severity_error_drops_info_events_and_suspend_drops_all() {
        let mut errors_only = alert(vec![source("Kustomization", "*")]);
        errors_only.spec.event_severity = Some("error".into());
        let mut info = kustomization_event();
        info.severity = "info".into();
        assert_eq!(match_sources(&errors_only, &info), SourceMatch::No);
        assert_eq!(
            match_sources(&errors_only, &kustomization_event()),
            SourceMatch::Yes
        );
        errors_only.spec.suspend = Some(true);
        assert_eq!(
            match_sources(&errors_only, &kustomization_event()),
            SourceMatch::No
        );
    }

    #[test]
    fn exclusion_wins_over_inclusion_and_bad_patterns_are_reported() {
        let mut a = alert(vec![]);
        a.spec.inclusion_list = Some(vec![".*failed.*".into()]);
        assert!(filter_message(&a, "dry-run failed").forwarded);
        assert!(!filter_message(&a, "applied").forwarded);
        a.spec.exclusion_list = Some(vec!["(".into(), "dry-run".into()]);
        let verdict = filter_message(&a, "dry-run failed");
        assert!(!verdict.forwarded);
        assert_eq!(verdict.invalid, ["("]);
        // Go's syntax: \z is Go's end of text.
        a.spec.exclusion_list = Some(vec![r"failed\z".into()]);
        assert!(!filter_message(&a, "health check failed").forwarded);
    }

    #[test]
    fn metadata_is_merged_in_flux_s_precedence() {
        let mut event = kustomization_event();
        event
            .metadata
            .insert("event.toolkit.fluxcd.io/env".into(), "dev".into());
        let mut a = alert(vec![]);
        a.spec.event_metadata = Some(
            [
                ("env".to_string(), "prod".to_string()),
                ("cluster".to_string(), "eu-1".to_string()),
            ]
            .into(),
        );
        a.spec.summary = Some("Cluster eu-1".into());
        let conflicts = combine_metadata(&mut event, &a);
        assert_eq!(
            event.metadata,
            [
                ("cluster".to_string(), "eu-1".to_string()),
                ("env".to_string(), "prod".to_string()),
                ("revision".to_string(), "main@sha1:8a7b1c".to_string()),
                ("summary".to_string(), "Cluster eu-1".to_string()),
            ]
            .into()
        );
        assert_eq!(conflicts.len(), 1);
        assert_eq!(conflicts[0].key, "env");
        assert_eq!(event.revision(), Some("main@sha1:8a7b1c"));
    }
}
