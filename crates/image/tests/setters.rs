//! The setter fixture corpus (`tests/setters/*.yaml`): each file states how many scalars the
//! rewrite must change (`# expect-changes: N` on its first line), and this test checks, with
//! its own oracle, that exactly the marked scalar bytes changed and nothing else.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ferroflux_image::setters::{LatestImage, Setters, rewrite};
use granit_parser::{Event, Parser};

const DIGEST: &str = "sha256:a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";

/// (policy, name, tag, digest)
const POLICIES: &[(&str, &str, &str, Option<&str>)] = &[
    (
        "flux-system:podinfo",
        "ghcr.io/stefanprodan/podinfo",
        "6.5.0",
        None,
    ),
    (
        "team-a:app",
        "registry.example.com:5000/team-a/app",
        "main-def456-1718000100",
        Some(DIGEST),
    ),
    ("team-a:numbers", "reg.example/numbers", "1.10", None),
    ("default:web", "docker.io/library/nginx", "1.27.1", None),
];

/// The oracle's own answer for a setter name (independent of `Setters`).
fn expected_value(setter: &str) -> Option<String> {
    POLICIES.iter().find_map(|(policy, name, tag, digest)| {
        let part = setter.strip_prefix(policy)?;
        match part {
            "" => Some(match digest {
                Some(d) => format!("{name}:{tag}@{d}"),
                None => format!("{name}:{tag}"),
            }),
            ":name" => Some(name.to_string()),
            ":tag" => Some(tag.to_string()),
            ":digest" => digest.map(str::to_string),
            _ => None,
        }
    })
}

fn setters() -> Setters {
    let images: Vec<(&str, LatestImage)> = POLICIES
        .iter()
        .map(|(policy, name, tag, digest)| {
            (
                *policy,
                LatestImage {
                    name: name.to_string(),
                    tag: tag.to_string(),
                    digest: digest.map(str::to_string),
                },
            )
        })
        .collect();
    Setters::from_policies(images.iter().map(|(p, l)| (*p, l)))
}

/// Undoes YAML quoting of a single-line flow scalar.
fn unquote(raw: &str) -> String {
    if let Some(inner) = raw.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
        return inner.replace("''", "'");
    }
    if let Some(inner) = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        return inner.replace("\\\"", "\"").replace("\\\\", "\\");
    }
    raw.to_string()
}

/// The setter a marker comment on `line` names (both marker forms used by the fixtures).
fn marker_on(line: &str) -> Option<String> {
    let comment = &line[line.find('#')?..];
    for key in [
        "$imagepolicy\": \"",
        "$imagepolicy: ",
        "io.k8s.cli.setters.",
    ] {
        if let Some(at) = comment.find(key) {
            let rest = &comment[at + key.len()..];
            let end = rest.find(['"', '}'])?;
            return Some(rest[..end].to_string());
        }
    }
    None
}

/// Event kinds and scalar values, without positions or styles.
fn shape(text: &str) -> Vec<String> {
    Parser::new_from_str(text)
        .map(|next| {
            let (event, _) = next.expect("fixture and output parse as YAML");
            match event {
                Event::Scalar(value, ..) => format!("scalar {value}"),
                Event::Comment(body, _) => format!("comment {}", body.trim_end()),
                other => format!("{other:?}"),
            }
        })
        .collect()
}

fn fixtures() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/setters");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/setters exists")
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn corpus_is_large_enough() {
    assert!(
        fixtures().len() >= 20,
        "the setter corpus needs 20+ fixtures"
    );
}

#[test]
fn rewrites_change_exactly_the_marked_bytes() {
    let setters = setters();
    let mut total = 0;
    for path in fixtures() {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(&path).expect("fixture is UTF-8");
        let expected: usize = text
            .lines()
            .next()
            .and_then(|l| {
                l.trim_start_matches('\u{feff}')
                    .trim()
                    .strip_prefix("# expect-changes:")
            })
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name}: first line must be `# expect-changes: N`"));
        let out = rewrite(&name, &text, &setters).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.changes.len(), expected, "{name}: number of changes");
        total += expected;

        // 1. Replaying only the reported ranges reproduces the output: no other byte moved.
        let mut replay = text.clone();
        for change in out.changes.iter().rev() {
            replay.replace_range(change.range.clone(), &change.replacement);
        }
        assert_eq!(replay, out.text, "{name}: bytes outside the changes differ");

        let mut previous_end = 0;
        for change in &out.changes {
            assert!(
                change.range.start >= previous_end,
                "{name}: overlapping changes"
            );
            previous_end = change.range.end;
            let raw = &text[change.range.clone()];
            // 2. Each range is one scalar on a single line that carries the marker.
            let line_start = text[..change.range.start].rfind('\n').map_or(0, |i| i + 1);
            let line_end = text[change.range.end..]
                .find('\n')
                .map_or(text.len(), |i| change.range.end + i);
            assert!(!raw.contains('\n'), "{name}: change spans lines");
            let line = &text[line_start..line_end];
            let after = &text[change.range.end..line_end];
            assert_eq!(
                marker_on(after).as_deref(),
                Some(change.setter.as_str()),
                "{name}: {line}"
            );
            assert_eq!(change.file, name);
            assert_eq!(
                change.line,
                text[..line_start].matches('\n').count() + 1,
                "{name}"
            );
            // 3. Old and new values are what the bytes say, and the new one is the policy's.
            assert_eq!(unquote(raw), change.old_value, "{name}: old value");
            assert_eq!(
                unquote(&change.replacement),
                change.new_value,
                "{name}: new value"
            );
            assert_eq!(
                expected_value(&change.setter).as_deref(),
                Some(change.new_value.as_str()),
                "{name}: value for {}",
                change.setter
            );
            // Quoting style is kept; plain becomes double-quoted only for the float-like tag.
            let quote = |s: &str| s.chars().next().filter(|c| *c == '"' || *c == '\'');
            if change.new_value != "1.10" {
                assert_eq!(
                    quote(raw),
                    quote(&change.replacement),
                    "{name}: quoting changed"
                );
            }
        }

        // 4. The document structure is the same; only the changed scalar values differ.
        let mut before = shape(&text);
        let after = shape(&out.text);
        assert_eq!(before.len(), after.len(), "{name}: event count");
        for change in &out.changes {
            let old = format!("scalar {}", change.old_value);
            let new = format!("scalar {}", change.new_value);
            let pos = before
                .iter()
                .zip(&after)
                .position(|(b, a)| *b == old && *a == new)
                .unwrap_or_else(|| panic!("{name}: changed scalar not found in the event stream"));
            before[pos] = new;
        }
        assert_eq!(before, after, "{name}: structure changed");

        // 5. Line ends are kept, and a second run has nothing left to do.
        assert_eq!(
            text.matches("\r\n").count(),
            out.text.matches("\r\n").count(),
            "{name}"
        );
        assert_eq!(text.lines().count(), out.text.lines().count(), "{name}");
        let again = rewrite(&name, &out.text, &setters).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            again.changes.is_empty(),
            "{name}: rewrite is not idempotent"
        );
    }
    assert!(total >= 40, "the corpus exercises {total} changes");
}

#[test]
fn objects_are_identified_per_document() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/setters/06-multi-doc.yaml");
    let text = std::fs::read_to_string(&path).expect("fixture");
    let out = rewrite("06", &text, &setters()).expect("valid");
    let objects: BTreeMap<String, String> = out
        .changes
        .iter()
        .map(|c| {
            (
                format!("{}/{}", c.object.kind, c.object.name),
                c.object.namespace.clone(),
            )
        })
        .collect();
    let expected: BTreeMap<String, String> = [
        ("Deployment/web".to_string(), "prod".to_string()),
        ("Job/migrate".to_string(), String::new()),
    ]
    .into();
    assert_eq!(objects, expected);
}

/// Damaged copies of the fixtures (bytes dropped, quotes and brackets inserted) never panic,
/// and whatever is rewritten still changes only the reported ranges.
#[test]
fn damaged_input_never_panics() {
    let setters = setters();
    let mut seed: u64 = 0x0123_4567_89ab_cdef;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let inserts = [
        "\"", "'", "{", "]", ": ", "#", "\n", "\r\n", "- ", "&a ", "*a", "\t", "é",
    ];
    let mut errors = 0;
    for path in fixtures() {
        let text = std::fs::read_to_string(&path).expect("fixture is UTF-8");
        for _ in 0..60 {
            let mut damaged = text.clone();
            for _ in 0..(next() % 4 + 1) {
                let mut at = (next() as usize) % (damaged.len() + 1);
                while !damaged.is_char_boundary(at) {
                    at -= 1;
                }
                if next() % 2 == 0 {
                    let insert = inserts[(next() as usize) % inserts.len()];
                    damaged.insert_str(at, insert);
                } else if at < damaged.len() {
                    damaged.remove(at);
                }
            }
            match rewrite("damaged.yaml", &damaged, &setters) {
                Err(_) => errors += 1,
                Ok(out) => {
                    let mut replay = damaged.clone();
                    for change in out.changes.iter().rev() {
                        replay.replace_range(change.range.clone(), &change.replacement);
                    }
                    assert_eq!(replay, out.text);
                }
            }
        }
    }
    assert!(
        errors > 0,
        "some damaged inputs should be reported as invalid YAML"
    );
}
