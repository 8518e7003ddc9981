//! `meta.k8s.io/v1` Table output, as `kubectl get` requests it.

use serde_json::{Value, json};

use crate::registry::Resource;

/// Whether an Accept header asks for a Table.
pub fn wants_table(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=Table"))
}

fn age(created: &str, now: jiff::Timestamp) -> String {
    let Ok(t) = created.parse::<jiff::Timestamp>() else {
        return "<unknown>".into();
    };
    let secs = (now.as_second() - t.as_second()).max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 3600 * 3 => format!("{}m", s / 60),
        s if s < 86400 * 2 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

/// Evaluates the simple JSONPath subset printer columns use (`.spec.x`, `.status.conditions[?(@.type=="Ready")].status`, `.a[0].b`).
pub fn json_path(obj: &Value, path: &str) -> Value {
    let mut cur = obj.clone();
    let p = path.trim().trim_start_matches('{').trim_end_matches('}');
    let p = p.strip_prefix('$').unwrap_or(p);
    let mut rest = p;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            cur = cur.get(&r[..end]).cloned().unwrap_or(Value::Null);
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let Some(end) = r.find(']') else {
                return Value::Null;
            };
            let inner = &r[..end];
            rest = &r[end + 1..];
            if let Some(filter) = inner.strip_prefix("?(@.").and_then(|f| f.strip_suffix(')')) {
                let Some((field, want)) = filter.split_once("==") else {
                    return Value::Null;
                };
                let want = want.trim().trim_matches(|c| c == '"' || c == '\'');
                cur = cur
                    .as_array()
                    .and_then(|a| {
                        a.iter()
                            .find(|i| i.get(field.trim()).and_then(Value::as_str) == Some(want))
                            .cloned()
                    })
                    .unwrap_or(Value::Null);
            } else if let Ok(i) = inner.parse::<usize>() {
                cur = cur.get(i).cloned().unwrap_or(Value::Null);
            } else {
                return Value::Null;
            }
        } else {
            return Value::Null;
        }
    }
    cur
}

fn cell(v: Value, ty: &str, now: jiff::Timestamp) -> Value {
    match (ty, &v) {
        ("date", Value::String(s)) => json!(age(s, now)),
        (_, Value::Null) => json!("<none>"),
        (_, Value::Array(_) | Value::Object(_)) => json!(v.to_string()),
        _ => v,
    }
}

type Getter = fn(&Value) -> Value;

fn count(v: &Value) -> Value {
    json!(
        v.as_object()
            .map(|m| m.len())
            .or_else(|| v.as_array().map(Vec::len))
            .unwrap_or(0)
    )
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// The columns kube-apiserver prints for common built-in kinds (besides Name and Age).
fn builtin_columns(kind: &str) -> Vec<(&'static str, &'static str, Getter)> {
    match kind {
        "Deployment" | "StatefulSet" | "ReplicaSet" => vec![
            ("Ready", "string", |o| {
                json!(format!(
                    "{}/{}",
                    int(&o["status"]["readyReplicas"]),
                    o["spec"]["replicas"].as_i64().unwrap_or(1)
                ))
            }),
            ("Up-to-date", "integer", |o| {
                json!(int(&o["status"]["updatedReplicas"]))
            }),
            ("Available", "integer", |o| {
                json!(int(&o["status"]["availableReplicas"]))
            }),
        ],
        "Pod" => vec![
            ("Ready", "string", |o| {
                let cs = o["status"]["containerStatuses"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let total = o["spec"]["containers"]
                    .as_array()
                    .map(Vec::len)
                    .unwrap_or(0);
                let ready = cs
                    .iter()
                    .filter(|c| c["ready"].as_bool() == Some(true))
                    .count();
                json!(format!("{ready}/{total}"))
            }),
            ("Status", "string", |o| o["status"]["phase"].clone()),
        ],
        "Service" => vec![
            ("Type", "string", |o| {
                json!(o["spec"]["type"].as_str().unwrap_or("ClusterIP"))
            }),
            ("Cluster-IP", "string", |o| {
                json!(o["spec"]["clusterIP"].as_str().unwrap_or("<none>"))
            }),
            ("Ports", "string", |o| {
                let ports: Vec<String> = o["spec"]["ports"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| format!("{}/{}", p["port"], p["protocol"].as_str().unwrap_or("TCP")))
                    .collect();
                json!(if ports.is_empty() {
                    "<none>".to_string()
                } else {
                    ports.join(",")
                })
            }),
        ],
        "Namespace" => vec![("Status", "string", |o| o["status"]["phase"].clone())],
        "Secret" => vec![
            ("Type", "string", |o| o["type"].clone()),
            ("Data", "integer", |o| count(&o["data"])),
        ],
        "ConfigMap" => vec![("Data", "integer", |o| {
            json!(int(&count(&o["data"])) + int(&count(&o["binaryData"])))
        })],
        "Job" => vec![("Status", "string", |o| {
            json!(if int(&o["status"]["succeeded"]) > 0 {
                "Complete"
            } else {
                "Running"
            })
        })],
        "Event" => vec![
            ("Type", "string", |o| o["type"].clone()),
            ("Reason", "string", |o| o["reason"].clone()),
            ("Object", "string", |o| {
                let io = &o["involvedObject"];
                let io = if io.is_object() { io } else { &o["regarding"] };
                json!(format!(
                    "{}/{}",
                    io["kind"].as_str().unwrap_or("").to_lowercase(),
                    io["name"].as_str().unwrap_or("")
                ))
            }),
            ("Message", "string", |o| {
                if o["message"].is_string() {
                    o["message"].clone()
                } else {
                    o["note"].clone()
                }
            }),
        ],
        _ => Vec::new(),
    }
}

/// The Table of `items` for `res`.
pub fn table(res: &Resource, items: &[Value], list_meta: Value) -> Value {
    let now = jiff::Timestamp::now();
    let mut defs = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0}),
    ];
    let mut cols: Vec<(String, String)> = Vec::new();
    for c in &res.printer_columns {
        let name = c["name"].as_str().unwrap_or("").to_string();
        let ty = c["type"].as_str().unwrap_or("string").to_string();
        defs.push(json!({"name": name, "type": ty, "format": c["format"].as_str().unwrap_or(""),
            "description": c["description"].as_str().unwrap_or(""), "priority": c["priority"].as_i64().unwrap_or(0)}));
        cols.push((c["jsonPath"].as_str().unwrap_or("").to_string(), ty));
    }
    let computed = if res.custom {
        Vec::new()
    } else {
        builtin_columns(&res.kind)
    };
    for (name, ty, _) in &computed {
        defs.push(
            json!({"name": name, "type": ty, "format": "", "description": "", "priority": 0}),
        );
    }
    if res.printer_columns.is_empty() {
        defs.push(json!({"name": "Age", "type": "date", "format": "", "description": "CreationTimestamp", "priority": 0}));
        cols.push((".metadata.creationTimestamp".into(), "date".into()));
    }
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            let mut cells = vec![o["metadata"]["name"].clone()];
            for (_, ty, get) in &computed {
                cells.push(cell(get(o), ty, now));
            }
            for (path, ty) in &cols {
                cells.push(cell(json_path(o, path), ty, now));
            }
            json!({"cells": cells, "object": o})
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta, "columnDefinitions": defs, "rows": rows})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_path_subset() {
        let o = json!({"spec": {"url": "u"}, "status": {"conditions": [{"type": "Other", "status": "X"}, {"type": "Ready", "status": "True"}]}, "a": [{"b": 1}]});
        assert_eq!(json_path(&o, ".spec.url"), "u");
        assert_eq!(
            json_path(&o, ".status.conditions[?(@.type==\"Ready\")].status"),
            "True"
        );
        assert_eq!(json_path(&o, ".a[0].b"), 1);
        assert_eq!(json_path(&o, ".missing.x"), Value::Null);
        assert!(wants_table(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
        ));
        assert!(!wants_table("application/json"));
    }
}
