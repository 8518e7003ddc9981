//! The one scrubber of secrets from messages: every error text that may quote a credential
//! (Git transports, OCI registries, S3 buckets) passes through [`redact`] before it reaches a
//! condition, an event or a log line.

/// Replaces every non-empty secret in `message`, and any `user:password@` of a URL in it,
/// with `***`.
pub fn redact(message: &str, secrets: &[impl AsRef<str>]) -> String {
    let mut out = message.to_string();
    for secret in secrets.iter().map(AsRef::as_ref).filter(|s| !s.is_empty()) {
        out = out.replace(secret, "***");
    }
    strip_url_userinfo(&out)
}

/// `https://user:pw@host/x` -> `https://***@host/x`, for every URL in `text`.
fn strip_url_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || c == '/' || c == '\'' || c == '"')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str("***");
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_removes_secrets_and_url_userinfo() {
        let msg = "failed to fetch https://bob:s3cret@example.com/repo.git: bad s3cret";
        let out = redact(msg, &["s3cret"]);
        assert!(!out.contains("s3cret"), "{out}");
        assert!(out.contains("https://***@example.com/repo.git"), "{out}");
        assert_eq!(strip_url_userinfo("git://host/x"), "git://host/x");
    }

    #[test]
    fn empty_secrets_are_ignored() {
        assert_eq!(redact("a b", &[""]), "a b");
    }
}
