//! `spec.pathPattern`: one set of output artifacts per directory of a source that matches
//! `@<alias>/<pattern>`, where `{name}` captures one path segment. Captured values are
//! lower-cased for artifact names and labels; copy operations get them as written, so source
//! paths keep their case.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ferroflux_api::artifactgenerator::{ArtifactGenerator, OutputArtifact};

use crate::rootfs::RootedFs;

/// One artifact to build: the output artifact with its placeholders rendered, and the labels
/// (the lower-cased captures) its ExternalArtifact carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The rendered output artifact.
    pub artifact: OutputArtifact,
    /// Labels for the ExternalArtifact.
    pub labels: BTreeMap<String, String>,
}

/// Expanding the path pattern failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// The spec or the matched directories must change (the generator stalls).
    #[error("{0}")]
    Terminal(String),
    /// The source could not be read.
    #[error("failed to walk source directory: {0}")]
    Walk(String),
}

/// The artifacts to build: the spec's, or, with a path pattern, one rendered set per matched
/// directory of the pattern's source (in walk order).
///
/// # Errors
/// [`PatternError::Terminal`] for an invalid pattern, capture or rendered name, or two
/// directories giving one name; [`PatternError::Walk`] when the source cannot be listed.
pub fn requests(
    object: &ArtifactGenerator,
    sources: &BTreeMap<String, PathBuf>,
) -> Result<Vec<Request>, PatternError> {
    let Some(path_pattern) = object
        .spec
        .path_pattern
        .as_deref()
        .filter(|p| !p.is_empty())
    else {
        return Ok(object
            .spec
            .artifacts
            .iter()
            .map(|artifact| Request {
                artifact: artifact.clone(),
                labels: BTreeMap::new(),
            })
            .collect());
    };
    let terminal = |message: String| PatternError::Terminal(message);
    let (alias, pattern) = path_pattern
        .strip_prefix('@')
        .and_then(|rest| rest.split_once('/'))
        .ok_or_else(|| terminal(format!("invalid pathPattern format: {path_pattern}")))?;
    let dir = sources.get(alias).ok_or_else(|| {
        terminal(format!(
            "pathPattern {path_pattern:?}: source alias {alias} not found in local sources"
        ))
    })?;
    let names = capture_names(pattern)
        .map_err(|why| terminal(format!("pathPattern {path_pattern:?}: {why}")))?;
    for name in &names {
        if !is_label_value(name) || name.is_empty() {
            return Err(terminal(format!(
                "pathPattern {path_pattern:?}: capture variable {name:?} is not a valid Kubernetes \
                 label key: {LABEL_RULE}"
            )));
        }
    }
    let mut regex = String::from("^");
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        let close = rest[open..]
            .find('}')
            .map(|c| open + c)
            .unwrap_or(rest.len());
        regex.push_str(&regex::escape(&rest[..open]));
        regex.push_str(&format!("(?P<{}>[^/]+)", &rest[open + 1..close]));
        rest = rest.get(close + 1..).unwrap_or_default();
    }
    regex.push_str(&regex::escape(rest));
    regex.push('$');
    let matcher = regex::Regex::new(&regex).map_err(|e| {
        terminal(format!(
            "pathPattern {path_pattern:?}: failed to compile path pattern: {e}"
        ))
    })?;
    let source = RootedFs::new(dir).map_err(|e| PatternError::Walk(e.to_string()))?;
    let mut dirs = Vec::new();
    walk_dirs(&source, Path::new(""), &mut dirs)?;
    let mut requests = Vec::new();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for rel in dirs {
        let Some(found) = matcher.captures(&rel) else {
            continue;
        };
        let raw: BTreeMap<String, String> = names
            .iter()
            .filter_map(|n| found.name(n).map(|m| (n.clone(), m.as_str().to_string())))
            .collect();
        let labels: BTreeMap<String, String> = raw
            .iter()
            .map(|(k, v)| (k.clone(), v.to_lowercase()))
            .collect();
        for (key, value) in &labels {
            if !is_label_value(value) {
                return Err(terminal(format!(
                    "pathPattern {path_pattern:?}: captured value {value:?} for variable {key:?} \
                     is not a valid Kubernetes label value: {LABEL_RULE}"
                )));
            }
        }
        for artifact in &object.spec.artifacts {
            let rendered = render_artifact(artifact, &labels, &raw).map_err(|why| {
                terminal(format!(
                    "pathPattern {path_pattern:?}: failed to render artifact {} for match {rel}: {why}",
                    artifact.name
                ))
            })?;
            if !super::is_dns_subdomain(&rendered.name) {
                return Err(terminal(format!(
                    "pathPattern {path_pattern:?}: rendered artifact name {:?} is not a valid \
                     Kubernetes object name",
                    rendered.name
                )));
            }
            if let Some(previous) = seen.insert(rendered.name.clone(), rel.clone()) {
                return Err(terminal(format!(
                    "pathPattern {path_pattern:?}: directories {previous:?} and {rel:?} both \
                     resolve to artifact name {:?}",
                    rendered.name
                )));
            }
            requests.push(Request {
                artifact: rendered,
                labels: labels.clone(),
            });
        }
    }
    Ok(requests)
}

/// Kubernetes' rule for label values, as its validation words it.
const LABEL_RULE: &str = "a valid label must be an empty string or consist of alphanumeric \
     characters, '-', '_' or '.', and must start and end with an alphanumeric character, and \
     be no more than 63 characters";

/// Kubernetes' `IsLabelValue` (and the name part of a label key when not empty).
fn is_label_value(value: &str) -> bool {
    let edge = |c: Option<char>| c.is_none_or(|c| c.is_ascii_alphanumeric());
    value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && edge(value.chars().next())
        && edge(value.chars().last())
}

fn is_capture_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The `{name}` captures of `pattern`, in order; braces must pair and names be unique.
fn capture_names(pattern: &str) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let mut i = 0;
    while i < pattern.len() {
        match pattern.as_bytes()[i] {
            b'{' => {
                let end = pattern[i + 1..].find('}').ok_or_else(|| {
                    format!("invalid capture starting at offset {i}: missing closing brace")
                })?;
                let name = &pattern[i + 1..i + 1 + end];
                if name.is_empty() {
                    return Err("empty capture variable".into());
                }
                if !is_capture_name(name) {
                    return Err(format!(
                        "capture variable {name:?} must be a valid capture name matching \
                         [A-Za-z_][A-Za-z0-9_]*"
                    ));
                }
                if names.iter().any(|n| n == name) {
                    return Err(format!("duplicate capture variable {name:?}"));
                }
                names.push(name.to_string());
                i += end + 2;
            }
            b'}' => {
                return Err(format!(
                    "invalid capture ending at offset {i}: missing opening brace"
                ));
            }
            _ => i += 1,
        }
    }
    Ok(names)
}

/// `template` with every `{name}` replaced by its value in `data`.
fn render(template: &str, data: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find(['{', '}']) {
        if rest.as_bytes()[open] == b'}' {
            return Err(format!(
                "invalid template {template:?}: a capture is missing its opening brace"
            ));
        }
        out.push_str(&rest[..open]);
        let end = rest[open + 1..].find('}').ok_or_else(|| {
            format!("invalid template {template:?}: a capture is missing its closing brace")
        })?;
        let name = &rest[open + 1..open + 1 + end];
        let value = data.get(name).ok_or_else(|| {
            format!("invalid template {template:?}: capture variable {name:?} is not defined by pathPattern")
        })?;
        out.push_str(value);
        rest = &rest[open + end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn render_artifact(
    artifact: &OutputArtifact,
    lowered: &BTreeMap<String, String>,
    raw: &BTreeMap<String, String>,
) -> Result<OutputArtifact, String> {
    let mut rendered = artifact.clone();
    rendered.name = render(&artifact.name, lowered)?;
    for op in &mut rendered.copy {
        op.from = render(&op.from, raw)?;
        op.to = render(&op.to, raw)?;
    }
    Ok(rendered)
}

/// Every directory under `dir` (relative, `/`-separated), depth first in name order.
fn walk_dirs(source: &RootedFs, dir: &Path, out: &mut Vec<String>) -> Result<(), PatternError> {
    let entries = source
        .read_dir(dir)
        .map_err(|e| PatternError::Walk(e.to_string()))?;
    for (name, file_type) in entries {
        if !file_type.is_dir() {
            continue;
        }
        let path = dir.join(&name);
        out.push(path.to_string_lossy().into_owned());
        walk_dirs(source, &path, out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferroflux_api::artifactgenerator::{ArtifactGeneratorSpec, CopyOperation};

    fn object(pattern: &str, name: &str) -> ArtifactGenerator {
        ArtifactGenerator::new(
            "gen",
            ArtifactGeneratorSpec {
                path_pattern: Some(pattern.into()),
                artifacts: vec![OutputArtifact {
                    name: name.into(),
                    copy: vec![CopyOperation {
                        from: "@repo/apps/{app}/envs/{env}/**".into(),
                        to: "@artifact/".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            },
        )
    }

    fn source(dirs: &[&str]) -> (tempfile::TempDir, BTreeMap<String, PathBuf>) {
        let dir = tempfile::tempdir().expect("temp dir");
        for d in dirs {
            std::fs::create_dir_all(dir.path().join(d)).expect("mkdir");
        }
        let sources = BTreeMap::from([("repo".to_string(), dir.path().to_path_buf())]);
        (dir, sources)
    }

    #[test]
    fn each_matched_directory_renders_the_artifacts_with_lowercased_names() {
        let (_dir, sources) =
            source(&["apps/Auth/envs/prod", "apps/web/envs/dev", "apps/web/other"]);
        let requests = requests(
            &object("@repo/apps/{app}/envs/{env}", "{app}-{env}"),
            &sources,
        )
        .expect("expands");
        let rendered: Vec<(&str, &str)> = requests
            .iter()
            .map(|r| (r.artifact.name.as_str(), r.artifact.copy[0].from.as_str()))
            .collect();
        assert_eq!(
            rendered,
            [
                ("auth-prod", "@repo/apps/Auth/envs/prod/**"),
                ("web-dev", "@repo/apps/web/envs/dev/**"),
            ]
        );
        assert_eq!(
            requests[0].labels,
            BTreeMap::from([("app".into(), "auth".into()), ("env".into(), "prod".into())])
        );
    }

    #[test]
    fn collisions_and_bad_captures_are_terminal() {
        let (_dir, sources) = source(&["apps/Auth/envs/x", "apps/auth/envs/x"]);
        let err = requests(&object("@repo/apps/{app}/envs/{env}", "{app}"), &sources)
            .expect_err("collision");
        assert!(
            matches!(&err, PatternError::Terminal(m) if m.contains("both resolve to artifact name \"auth\"")),
            "{err}"
        );
        let err = requests(&object("@repo/apps/{app", "{app}"), &sources).expect_err("brace");
        assert!(err.to_string().contains("missing closing brace"), "{err}");
        let err = requests(&object("@repo/apps/{app}", "{nope}"), &sources).expect_err("undefined");
        assert!(
            err.to_string().contains("is not defined by pathPattern"),
            "{err}"
        );
    }
}
