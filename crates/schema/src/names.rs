//! Object metadata rules of kube-apiserver, in its words: object names, label and annotation
//! keys and values, finalizers.

use serde_json::{Value, json};

use crate::Cause;

/// A DNS-1123 label: lowercase alphanumerics and `-`, at most 63 characters.
pub fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// kube-apiserver's explanation of an invalid DNS-1123 subdomain.
pub const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

/// kube-apiserver's explanation of an invalid DNS-1123 label.
pub const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

/// Validates `metadata.namespace` (a DNS-1123 label, as a Namespace's name); `None` when
/// valid or empty (the server fills in the request's namespace).
pub fn namespace_error(ns: &str) -> Option<Cause> {
    (!ns.is_empty() && !is_label(ns)).then(|| {
        Cause::invalid(
            "metadata.namespace",
            &Value::String(ns.to_string()),
            LABEL_MSG,
        )
    })
}

/// A DNS-1123 subdomain: lowercase labels joined by dots, at most 253 characters.
pub fn is_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_label)
}

/// Validates the name of an object of `group`/`kind` as kube-apiserver does (a DNS-1123 label
/// for Namespaces and Services, RBAC's path-segment rule for its four kinds, a DNS-1123
/// subdomain for everything else); `None` when valid.
pub fn name_error(group: &str, kind: &str, name: &str) -> Option<Cause> {
    let v = Value::String(name.to_string());
    if name.is_empty() {
        return Some(Cause::required("metadata.name"));
    }
    match (group, kind) {
        ("", "Namespace" | "Service") => {
            (!is_label(name)).then(|| Cause::invalid("metadata.name", &v, LABEL_MSG))
        }
        (
            "rbac.authorization.k8s.io",
            "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding",
        ) => (name == "." || name == ".." || name.contains('/') || name.contains('%')).then(|| {
            Cause::invalid(
                "metadata.name",
                &v,
                "may not be '.' or '..' and may not contain '/' or '%'",
            )
        }),
        _ => (!is_subdomain(name)).then(|| Cause::invalid("metadata.name", &v, SUBDOMAIN_MSG)),
    }
}

/// kube's name-part pattern (`([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`), whatever the length.
fn matches_name_part(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
}

const NAME_PART_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

/// What is wrong with a qualified name (`prefix/name` or `name`, as label and annotation keys
/// and finalizers are), one message per fault in kube-apiserver's words (apimachinery's
/// `validation.IsQualifiedName`); empty when valid.
pub fn qualified_name_errors(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let name = match s.split('/').collect::<Vec<_>>().as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else if prefix.len() > 253 {
                errs.push("prefix part must be no more than 253 characters".to_string());
            } else if !is_subdomain(prefix) {
                errs.push(format!("prefix part {SUBDOMAIN_MSG}"));
            }
            *name
        }
        _ => {
            return vec![format!(
                "a valid label key {NAME_PART_MSG} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            )];
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        errs.push("name part must be no more than 63 characters".to_string());
    }
    if !matches_name_part(name) {
        errs.push(format!("name part {NAME_PART_MSG}"));
    }
    errs
}

/// kube-apiserver's explanation of a label value that does not match the pattern.
pub const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

/// What is wrong with a label value, one message per fault in kube-apiserver's words
/// (apimachinery's `IsLabelValue`: empty, or at most 63 characters of a name part); empty when
/// valid.
pub fn label_value_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push("must be no more than 63 characters".to_string());
    }
    if !value.is_empty() && !matches_name_part(value) {
        errs.push(LABEL_VALUE_MSG.to_string());
    }
    errs
}

/// Checks labels, annotations and finalizers; every violation is returned.
pub fn validate_metadata(obj: &Value) -> Vec<Cause> {
    let meta = &obj["metadata"];
    let mut out = Vec::new();
    match &meta["labels"] {
        Value::Null => {}
        Value::Object(m) => {
            for (k, v) in m {
                for msg in qualified_name_errors(k) {
                    out.push(Cause::invalid("metadata.labels", &json!(k), &msg));
                }
                match v.as_str() {
                    Some(s) if label_value_errors(s).is_empty() => {}
                    _ => out.push(Cause::invalid("metadata.labels", v, LABEL_VALUE_MSG)),
                }
            }
        }
        other => out.push(Cause::type_invalid("metadata.labels", other, "object")),
    }
    match &meta["annotations"] {
        Value::Null => {}
        Value::Object(m) => {
            let mut total = 0;
            for (k, v) in m {
                // kube-apiserver checks annotation keys lower-cased.
                for msg in qualified_name_errors(&k.to_lowercase()) {
                    out.push(Cause::invalid("metadata.annotations", &json!(k), &msg));
                }
                match v.as_str() {
                    Some(s) => total += k.len() + s.len(),
                    None => out.push(Cause::type_invalid(
                        format!("metadata.annotations[{k}]"),
                        v,
                        "string",
                    )),
                }
            }
            if total > 256 * 1024 {
                out.push(Cause::too_long(
                    "metadata.annotations",
                    &format!("may not be more than 262144 bytes (got {total})"),
                ));
            }
        }
        other => out.push(Cause::type_invalid("metadata.annotations", other, "object")),
    }
    match &meta["finalizers"] {
        Value::Null => {}
        Value::Array(a) => {
            for (i, f) in a.iter().enumerate() {
                let field = format!("metadata.finalizers[{i}]");
                match f.as_str() {
                    Some(name) => {
                        for msg in qualified_name_errors(name) {
                            out.push(Cause::invalid(field.clone(), f, &msg));
                        }
                    }
                    None => out.push(Cause::type_invalid(field, f, "string")),
                }
            }
        }
        other => out.push(Cause::type_invalid("metadata.finalizers", other, "array")),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_kind_rule() {
        assert!(name_error("", "ConfigMap", "a.b-c").is_none());
        assert!(name_error("", "ConfigMap", "Bad_Name").is_some());
        assert!(name_error("", "Namespace", "a.b").is_some());
        assert!(name_error("example.com", "Widget", "a.b").is_none());
        assert!(namespace_error("team-a").is_none());
        assert!(namespace_error("team.a").is_some());
        assert_eq!(
            name_error("", "ConfigMap", "").map(|c| c.reason),
            Some("FieldValueRequired")
        );
    }

    #[test]
    fn qualified_name_faults_are_named_per_part_as_kube_does() {
        assert!(qualified_name_errors("example.com/ok-name").is_empty());
        assert_eq!(
            qualified_name_errors("bad_label!"),
            [format!("name part {NAME_PART_MSG}")]
        );
        assert_eq!(
            qualified_name_errors("Example.com/"),
            [
                format!("prefix part {SUBDOMAIN_MSG}"),
                "name part must be non-empty".to_string(),
                format!("name part {NAME_PART_MSG}"),
            ]
        );
        assert!(qualified_name_errors("a/b/c")[0].ends_with(
            "with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ));
    }

    #[test]
    fn metadata_validation() {
        let ok = json!({"metadata": {"labels": {"app.kubernetes.io/name": "web", "x": ""},
            "annotations": {"example.com/a": "any text!"}, "finalizers": ["kubernetes", "example.com/hold"]}});
        assert!(validate_metadata(&ok).is_empty());
        let bad = json!({"metadata": {"labels": {"bad key!": "v", "k": "bad value!", "n": 3},
            "annotations": {"a": 1}, "finalizers": ["no spaces allowed"]}});
        let fields: Vec<String> = validate_metadata(&bad)
            .into_iter()
            .map(|c| c.field)
            .collect();
        assert_eq!(
            fields,
            vec![
                "metadata.labels",
                "metadata.labels",
                "metadata.labels",
                "metadata.annotations[a]",
                "metadata.finalizers[0]"
            ]
        );
    }
}
