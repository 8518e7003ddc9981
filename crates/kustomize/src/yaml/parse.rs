//! YAML text to [`Value`]s, resolving plain scalars the way go-yaml v3 does (kustomize reads
//! resources with it), on top of granit-parser's event stream.

use std::collections::HashMap;

use ferroflux_gocompat::yaml::resolve::{is_float, parse_int};
use ferroflux_gocompat::yaml::{Guard, parser_options};
use granit_parser::{Event, Parser, ScalarStyle};

use super::value::{Map, Value};

/// A YAML syntax or structure error, with its 1-based line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct YamlError {
    /// 1-based line of the problem.
    pub line: usize,
    /// What went wrong.
    pub message: String,
}

enum Frame {
    Seq(Vec<Value>, usize),
    Map(Map, Option<String>, usize, Vec<Map>),
}

/// Parses every document of a YAML stream. Empty documents come back as [`Value::Null`].
pub fn parse_documents(src: &str) -> Result<Vec<Value>, YamlError> {
    parse_documents_with(src, false)
}

/// Like [`parse_documents`]; with `allow_duplicates` a repeated mapping key replaces the
/// earlier value instead of failing (how kustomization files are read upstream).
pub fn parse_documents_with(src: &str, allow_duplicates: bool) -> Result<Vec<Value>, YamlError> {
    parse_impl(src, allow_duplicates, false)
}

/// Like [`parse_documents`] for Kubernetes objects: a mapping key that is not a string
/// (`1:`, `true:`, `~:`) is an error, as it is upstream when the object becomes JSON.
pub fn parse_objects(src: &str) -> Result<Vec<Value>, YamlError> {
    parse_impl(src, false, true)
}

fn parse_impl(
    src: &str,
    allow_duplicates: bool,
    string_keys: bool,
) -> Result<Vec<Value>, YamlError> {
    let mut docs = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Value> = HashMap::new();
    let mut current: Option<Value> = None;
    // Aliases are cloned below, so the guard must see each event before it is built.
    let mut guard = Guard::new(src.len()).map_err(|e| YamlError {
        line: 1,
        message: e.to_string(),
    })?;
    for ev in Parser::new_from_str_with_options(src, parser_options()) {
        let (ev, span) = ev.map_err(|e| YamlError {
            line: e.marker().line(),
            message: e.info(),
        })?;
        let line = span.start.line();
        guard.event(&ev).map_err(|e| YamlError {
            line,
            message: e.to_string(),
        })?;
        let node = match ev {
            Event::StreamStart | Event::StreamEnd => continue,
            Event::DocumentStart(..) => {
                current = None;
                anchors.clear();
                continue;
            }
            Event::DocumentEnd => {
                docs.push(current.take().unwrap_or(Value::Null));
                continue;
            }
            Event::Alias(id) => anchors.get(&id).cloned().ok_or_else(|| YamlError {
                line,
                message: "unknown anchor".to_string(),
            })?,
            Event::Scalar(text, style, anchor, tag) => {
                let tag = tag.map(|t| t.suffix().to_string());
                let v = resolve_scalar(&text, style, tag.as_deref());
                if anchor != 0 {
                    anchors.insert(anchor, v.clone());
                }
                v
            }
            Event::SequenceStart(_, anchor, _) => {
                stack.push(Frame::Seq(Vec::new(), anchor));
                continue;
            }
            Event::MappingStart(_, anchor, _) => {
                stack.push(Frame::Map(Map::new(), None, anchor, Vec::new()));
                continue;
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Seq(items, anchor)) => {
                    let v = Value::Seq(items);
                    if anchor != 0 {
                        anchors.insert(anchor, v.clone());
                    }
                    v
                }
                _ => {
                    return Err(YamlError {
                        line,
                        message: "unbalanced sequence".into(),
                    });
                }
            },
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map(m, _, anchor, merges)) => {
                    let v = Value::Map(with_merges(m, merges));
                    if anchor != 0 {
                        anchors.insert(anchor, v.clone());
                    }
                    v
                }
                _ => {
                    return Err(YamlError {
                        line,
                        message: "unbalanced mapping".into(),
                    });
                }
            },
            _ => continue,
        };
        match stack.last_mut() {
            None => current = Some(node),
            Some(Frame::Seq(items, _)) => items.push(node),
            Some(Frame::Map(m, key, _, merges)) => match key.take() {
                None => {
                    if string_keys && !matches!(node, Value::Str(_)) {
                        return Err(YamlError {
                            line,
                            message: format!(
                                "mapping key {} is not a string; Kubernetes objects need string keys (json: unsupported type: map[interface {{}}]interface {{}})",
                                node.scalar_text().unwrap_or_else(|| "null".into())
                            ),
                        });
                    }
                    let k = match &node {
                        Value::Str(s) => s.clone(),
                        Value::Null => "null".to_string(),
                        Value::Map(_) | Value::Seq(_) => {
                            return Err(YamlError {
                                line,
                                message: "mapping keys must be scalars".into(),
                            });
                        }
                        other => other.scalar_text().unwrap_or_default(),
                    };
                    *key = Some(k);
                }
                Some(k) => {
                    if k == "<<" {
                        match node {
                            Value::Map(mm) => merges.push(mm),
                            Value::Seq(items) => {
                                merges.extend(items.into_iter().filter_map(|i| match i {
                                    Value::Map(mm) => Some(mm),
                                    _ => None,
                                }))
                            }
                            other => m.insert(k, other),
                        }
                    } else if m.contains_key(&k) && !allow_duplicates {
                        return Err(YamlError {
                            line,
                            message: format!("mapping key \"{k}\" already defined"),
                        });
                    } else {
                        m.insert(k, node);
                    }
                }
            },
        }
    }
    if let Some(v) = current {
        docs.push(v);
    }
    Ok(docs)
}

/// A mapping with its `<<` merges applied: explicit keys win over merged ones.
fn with_merges(mut m: Map, merges: Vec<Map>) -> Map {
    for merged in merges {
        for (k, v) in merged {
            if !m.contains_key(&k) {
                m.insert(k, v);
            }
        }
    }
    m
}

/// Resolves one scalar: quoted or `!!str` scalars are strings; plain ones follow YAML 1.2's
/// core schema plus go-yaml v3's extras (underscores in numbers, `0o` and legacy `0` octals).
pub fn resolve_scalar(text: &str, style: ScalarStyle, tag: Option<&str>) -> Value {
    match tag {
        Some("str") | Some("binary") => return Value::Str(text.to_string()),
        Some("int") | Some("float") | Some("bool") | Some("null") => {
            return resolve_plain(text);
        }
        Some(_) => return Value::Str(text.to_string()),
        None => {}
    }
    if style != ScalarStyle::Plain {
        return Value::Str(text.to_string());
    }
    resolve_plain(text)
}

/// Resolves untagged plain text (`16` is an integer, `true` a boolean, ...).
pub fn resolve_plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        _ => {}
    }
    let first = text.as_bytes()[0];
    if !(first.is_ascii_digit() || first == b'-' || first == b'+' || first == b'.') {
        return Value::Str(text.to_string());
    }
    if first == b'.' {
        return match text.parse::<f64>() {
            Ok(f) if is_float(text) => Value::Float(f),
            _ => Value::Str(text.to_string()),
        };
    }
    if let Some(ts) = go_timestamp(text) {
        // go-yaml v3 decodes these into time.Time, which JSON prints as RFC 3339.
        return Value::Str(ts);
    }
    let plain: String = text.chars().filter(|c| *c != '_').collect();
    if let Some(i) = parse_int(&plain) {
        return Value::Int(i);
    }
    if is_float(&plain)
        && let Ok(f) = plain.parse::<f64>()
    {
        return Value::Float(f);
    }
    Value::Str(text.to_string())
}

/// A plain scalar go-yaml reads as a timestamp (`2006-1-2`, optionally with a `T`/`t`/space
/// separated time, fraction and zone), printed the way Go's JSON encodes a `time.Time`.
pub fn go_timestamp(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut i = 0;
    let num = |i: &mut usize, min: usize, max: usize| -> Option<u32> {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() && *i - start < max {
            *i += 1;
        }
        if *i - start < min {
            return None;
        }
        s[start..*i].parse().ok()
    };
    let year = num(&mut i, 4, 4)?;
    let sep = |i: &mut usize, c: u8| -> Option<()> { (b.get(*i) == Some(&c)).then(|| *i += 1) };
    sep(&mut i, b'-')?;
    let month = num(&mut i, 1, 2)?;
    sep(&mut i, b'-')?;
    let day = num(&mut i, 1, 2)?;
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let mdays = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&month) || day < 1 || day > mdays[month as usize - 1] {
        return None;
    }
    let date = format!("{year:04}-{month:02}-{day:02}");
    if i == b.len() {
        return Some(format!("{date}T00:00:00Z"));
    }
    let tsep = b[i];
    if !matches!(tsep, b'T' | b't' | b' ') {
        return None;
    }
    i += 1;
    let h = num(&mut i, 1, 2)?;
    sep(&mut i, b':')?;
    let mi = num(&mut i, 1, 2)?;
    sep(&mut i, b':')?;
    let sec = num(&mut i, 1, 2)?;
    if h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let mut frac = String::new();
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() && i - start < 9 {
            i += 1;
        }
        if i == start {
            return None;
        }
        let digits = s[start..i].trim_end_matches('0');
        if !digits.is_empty() {
            frac = format!(".{digits}");
        }
    }
    let zone = if tsep == b' ' {
        if i != b.len() {
            return None;
        }
        "Z".to_string()
    } else {
        match b.get(i) {
            Some(b'Z') if i + 1 == b.len() => "Z".to_string(),
            Some(&c) if (c == b'+' || c == b'-') && b.len() - i == 6 && b[i + 3] == b':' => {
                let hh: u32 = s[i + 1..i + 3].parse().ok()?;
                let mm: u32 = s[i + 4..i + 6].parse().ok()?;
                if hh == 0 && mm == 0 {
                    "Z".to_string()
                } else {
                    format!("{}{hh:02}:{mm:02}", c as char)
                }
            }
            _ => return None,
        }
    };
    Some(format!("{date}T{h:02}:{mi:02}:{sec:02}{frac}{zone}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_plain_scalars_like_go_yaml_v3() {
        let docs = parse_documents("a: 1\nb: '1'\nc: yes\nd: 0644\ne: 1.5\nf: ~\ng: true\n")
            .expect("valid yaml");
        let m = docs[0].as_map().expect("a mapping");
        assert_eq!(m.get("a"), Some(&Value::Int(1)));
        assert_eq!(m.get("b"), Some(&Value::Str("1".into())));
        assert_eq!(m.get("c"), Some(&Value::Str("yes".into())));
        assert_eq!(m.get("d"), Some(&Value::Int(420)));
        assert_eq!(m.get("e"), Some(&Value::Float(1.5)));
        assert_eq!(m.get("f"), Some(&Value::Null));
        assert_eq!(m.get("g"), Some(&Value::Bool(true)));
    }

    #[test]
    fn timestamps_become_rfc3339_strings() {
        assert_eq!(
            go_timestamp("2024-1-2").as_deref(),
            Some("2024-01-02T00:00:00Z")
        );
        assert_eq!(
            go_timestamp("2001-12-14t21:59:43.10-05:00").as_deref(),
            Some("2001-12-14T21:59:43.1-05:00")
        );
        assert_eq!(
            go_timestamp("2001-12-14 21:59:43.0").as_deref(),
            Some("2001-12-14T21:59:43Z")
        );
        assert_eq!(go_timestamp("2023-02-30"), None);
        assert_eq!(go_timestamp("2023-02"), None);
    }

    #[test]
    fn reports_the_line_of_a_syntax_error() {
        let err = parse_documents("a: 1\nb: [\n").expect_err("unterminated flow");
        assert!(err.line >= 2, "{err}");
    }

    #[test]
    fn splits_documents_and_keeps_empty_ones_as_null() {
        let docs = parse_documents("a: 1\n---\n---\nb: 2\n").expect("valid");
        assert_eq!(docs.len(), 3);
        assert!(docs[1].is_null());
    }

    #[test]
    fn aliases_and_merge_keys_expand() {
        let docs = parse_documents("x: &a {p: 1}\ny:\n  <<: *a\n  q: 2\n").expect("valid");
        let y = docs[0].get("y").expect("y");
        assert_eq!(y.get("p"), Some(&Value::Int(1)));
        assert_eq!(y.get("q"), Some(&Value::Int(2)));
    }
}
