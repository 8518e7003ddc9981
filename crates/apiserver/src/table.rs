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

/// The time since `t` as kube prints it (`duration.HumanDuration`).
fn human_duration(secs: i64) -> String {
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86400);
    match secs {
        s if s < -1 => "<invalid>".into(),
        s if s < 0 => "0s".into(),
        s if s < 120 => format!("{s}s"),
        _ if m < 10 && secs % 60 == 0 => format!("{m}m"),
        _ if m < 10 => format!("{m}m{}s", secs % 60),
        _ if m < 180 => format!("{m}m"),
        _ if h < 8 && m % 60 == 0 => format!("{h}h"),
        _ if h < 8 => format!("{h}h{}m", m % 60),
        _ if h < 48 => format!("{h}h"),
        _ if h < 192 && h % 24 == 0 => format!("{d}d"),
        _ if h < 192 => format!("{d}d{}h", h % 24),
        _ if d < 365 * 2 => format!("{d}d"),
        _ if d < 365 * 8 && d % 365 == 0 => format!("{}y", d / 365),
        _ if d < 365 * 8 => format!("{}y{}d", d / 365, d % 365),
        _ => format!("{}y", d / 365),
    }
}

fn age(created: &str, now: jiff::Timestamp) -> String {
    let Ok(t) = created.parse::<jiff::Timestamp>() else {
        return "<unknown>".into();
    };
    human_duration(now.as_second() - t.as_second())
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

/// A computed cell of a built-in kind's printer, final as it is (a "date" one, Created At, is
/// not turned into an age): `<none>` for nothing, JSON text for a structure.
fn cell(v: Value) -> Value {
    match &v {
        Value::Null => json!("<none>"),
        Value::Array(_) | Value::Object(_) => json!(v.to_string()),
        _ => v,
    }
}

type Getter = fn(&Value, jiff::Timestamp) -> Value;

/// One column kube's printers define: name, type, priority (1: shown by `-o wide`), cell.
type Column = (&'static str, &'static str, i64, Getter);

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

fn string_or(v: &Value, none: &str) -> Value {
    json!(v.as_str().filter(|s| !s.is_empty()).unwrap_or(none))
}

fn age_cell(o: &Value, now: jiff::Timestamp) -> Value {
    json!(age(
        o["metadata"]["creationTimestamp"].as_str().unwrap_or(""),
        now
    ))
}

/// `labels.FormatLabels`: sorted `k=v` pairs, `<none>` when empty.
fn format_labels(m: &Value) -> String {
    let mut pairs: Vec<String> = m
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    pairs.sort();
    if pairs.is_empty() {
        "<none>".into()
    } else {
        pairs.join(",")
    }
}

/// `metav1.FormatLabelSelector`: matchLabels then matchExpressions, `<none>` when empty.
fn format_selector(sel: &Value) -> String {
    if !sel.is_object() {
        return "<none>".into();
    }
    let mut parts: Vec<String> = Vec::new();
    let mut labels: Vec<String> = sel["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    labels.sort();
    parts.extend(labels);
    for e in sel["matchExpressions"].as_array().into_iter().flatten() {
        let key = e["key"].as_str().unwrap_or("");
        let values: Vec<&str> = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        parts.push(match e["operator"].as_str().unwrap_or("") {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            op => format!("{key} {op} ({})", values.join(",")),
        });
    }
    if parts.is_empty() {
        "<none>".into()
    } else {
        parts.join(",")
    }
}

/// Names and images of a pod spec's containers (`layoutContainerCells`).
fn containers_of(pod_spec: &Value) -> (Value, Value) {
    let cs = pod_spec["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let names: Vec<&str> = cs
        .iter()
        .map(|c| c["name"].as_str().unwrap_or(""))
        .collect();
    let images: Vec<&str> = cs
        .iter()
        .map(|c| c["image"].as_str().unwrap_or(""))
        .collect();
    (json!(names.join(",")), json!(images.join(",")))
}

fn template_spec(o: &Value) -> &Value {
    &o["spec"]["template"]["spec"]
}

fn cronjob_pod_spec(o: &Value) -> &Value {
    &o["spec"]["jobTemplate"]["spec"]["template"]["spec"]
}

fn has_condition(o: &Value, ty: &str) -> bool {
    o["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == ty && c["status"] == "True")
}

/// `printPod`'s status column: the phase, or the reason the containers give.
fn pod_status(o: &Value) -> String {
    let st = &o["status"];
    let mut reason = st["reason"]
        .as_str()
        .filter(|r| !r.is_empty())
        .or(st["phase"].as_str())
        .unwrap_or("")
        .to_string();
    if st["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "PodScheduled" && c["reason"] == "SchedulingGated")
    {
        reason = "SchedulingGated".into();
    }
    let inits = st["initContainerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let init_total = o["spec"]["initContainers"].as_array().map_or(0, Vec::len);
    let mut initializing = false;
    for (i, c) in inits.iter().enumerate() {
        let term = &c["state"]["terminated"];
        let wait = &c["state"]["waiting"];
        if term.is_object() && int(&term["exitCode"]) == 0 {
            continue;
        }
        reason = if term.is_object() {
            match term["reason"].as_str().filter(|r| !r.is_empty()) {
                Some(r) => format!("Init:{r}"),
                None if int(&term["signal"]) != 0 => {
                    format!("Init:Signal:{}", int(&term["signal"]))
                }
                None => format!("Init:ExitCode:{}", int(&term["exitCode"])),
            }
        } else if let Some(r) = wait["reason"]
            .as_str()
            .filter(|r| !r.is_empty() && *r != "PodInitializing")
        {
            format!("Init:{r}")
        } else {
            format!("Init:{i}/{init_total}")
        };
        initializing = true;
        break;
    }
    if !initializing || has_condition(o, "Initialized") {
        let mut has_running = false;
        let mut error_reason = String::new();
        for c in st["containerStatuses"]
            .as_array()
            .into_iter()
            .flatten()
            .rev()
        {
            let term = &c["state"]["terminated"];
            if let Some(r) = c["state"]["waiting"]["reason"]
                .as_str()
                .filter(|r| !r.is_empty())
            {
                reason = r.to_string();
            } else if term.is_object() {
                reason = match term["reason"].as_str().filter(|r| !r.is_empty()) {
                    Some(r) => r.to_string(),
                    None if int(&term["signal"]) != 0 => {
                        format!("Signal:{}", int(&term["signal"]))
                    }
                    None => format!("ExitCode:{}", int(&term["exitCode"])),
                };
                if int(&term["exitCode"]) != 0 {
                    error_reason = reason.clone();
                }
            } else if c["ready"] == true && c["state"]["running"].is_object() {
                has_running = true;
            }
        }
        if reason == "Completed" {
            if has_running && has_condition(o, "Ready") {
                reason = "Running".into();
            } else if !error_reason.is_empty() {
                reason = error_reason;
            } else if has_running {
                reason = "NotReady".into();
            }
        }
    }
    let phase = st["phase"].as_str().unwrap_or("");
    if o["metadata"]["deletionTimestamp"].is_string() {
        if st["reason"] == "NodeLost" {
            reason = "Unknown".into();
        } else if phase != "Succeeded" && phase != "Failed" {
            reason = "Terminating".into();
        }
    }
    reason
}

fn pod_ready(o: &Value) -> Value {
    let total = o["spec"]["containers"].as_array().map_or(0, Vec::len);
    let ready = o["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["ready"] == true && c["state"]["running"].is_object())
        .count();
    json!(format!("{ready}/{total}"))
}

fn pod_restarts(o: &Value, now: jiff::Timestamp) -> Value {
    let mut restarts = 0;
    let mut last: Option<jiff::Timestamp> = None;
    for c in o["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
    {
        restarts += int(&c["restartCount"]);
        if let Some(t) = c["lastState"]["terminated"]["finishedAt"]
            .as_str()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        {
            last = Some(last.map_or(t, |l| l.max(t)));
        }
    }
    match last {
        Some(t) if restarts != 0 => json!(format!(
            "{restarts} ({} ago)",
            human_duration(now.as_second() - t.as_second())
        )),
        _ => json!(restarts.to_string()),
    }
}

fn pod_ip(o: &Value) -> Value {
    let ip = o["status"]["podIPs"][0]["ip"]
        .as_str()
        .or(o["status"]["podIP"].as_str());
    string_or(&json!(ip), "<none>")
}

fn readiness_gates(o: &Value) -> Value {
    let gates = o["spec"]["readinessGates"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if gates.is_empty() {
        return json!("<none>");
    }
    let conditions = o["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let ok = gates
        .iter()
        .filter(|g| {
            conditions
                .iter()
                .find(|c| c["type"] == g["conditionType"])
                .is_some_and(|c| c["status"] == "True")
        })
        .count();
    json!(format!("{ok}/{}", gates.len()))
}

fn job_status(o: &Value) -> Value {
    let s = if has_condition(o, "Complete") {
        "Complete"
    } else if has_condition(o, "Failed") {
        "Failed"
    } else if o["metadata"]["deletionTimestamp"].is_string() {
        "Terminating"
    } else if has_condition(o, "Suspended") {
        "Suspended"
    } else if has_condition(o, "FailureTarget") {
        "FailureTarget"
    } else if has_condition(o, "SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else {
        "Running"
    };
    json!(s)
}

fn job_completions(o: &Value) -> Value {
    let succeeded = int(&o["status"]["succeeded"]);
    let spec = &o["spec"];
    json!(match spec["completions"].as_i64() {
        Some(c) => format!("{succeeded}/{c}"),
        None if int(&spec["parallelism"]) > 1 => {
            format!("{succeeded}/1 of {}", int(&spec["parallelism"]))
        }
        None => format!("{succeeded}/1"),
    })
}

fn job_duration(o: &Value, now: jiff::Timestamp) -> Value {
    let t = |k: &str| {
        o["status"][k]
            .as_str()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
    };
    json!(match (t("startTime"), t("completionTime")) {
        (None, _) => String::new(),
        (Some(s), None) => human_duration(now.as_second() - s.as_second()),
        (Some(s), Some(c)) => human_duration(c.as_second() - s.as_second()),
    })
}

/// kube's `loadBalancerStatusStringer`: each `status.loadBalancer.ingress` entry's IP, else its
/// host name, sorted and without duplicates (a string set in kube).
fn load_balancer_ingress(o: &Value) -> Vec<&str> {
    let mut addresses: Vec<&str> = o["status"]["loadBalancer"]["ingress"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| {
            let non_empty = |field: &str| i[field].as_str().filter(|s| !s.is_empty());
            non_empty("ip").or_else(|| non_empty("hostname"))
        })
        .collect();
    addresses.sort_unstable();
    addresses.dedup();
    addresses
}

fn service_external_ip(o: &Value) -> Value {
    let spec = &o["spec"];
    let external: Vec<&str> = spec["externalIPs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    json!(match spec["type"].as_str().unwrap_or("") {
        "ClusterIP" | "NodePort" if !external.is_empty() => external.join(","),
        "ClusterIP" | "NodePort" => "<none>".into(),
        "LoadBalancer" => {
            let mut ips = load_balancer_ingress(o);
            ips.extend(external);
            if ips.is_empty() {
                "<pending>".into()
            } else {
                ips.join(",")
            }
        }
        "ExternalName" => spec["externalName"].as_str().unwrap_or("").to_string(),
        _ => "<unknown>".into(),
    })
}

fn service_ports(o: &Value) -> Value {
    let ports: Vec<String> = o["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let proto = p["protocol"].as_str().unwrap_or("");
            match p["nodePort"].as_i64().filter(|n| *n > 0) {
                Some(n) => format!("{}:{n}/{proto}", int(&p["port"])),
                None => format!("{}/{proto}", int(&p["port"])),
            }
        })
        .collect();
    json!(if ports.is_empty() {
        "<none>".to_string()
    } else {
        ports.join(",")
    })
}

/// Users, groups or service accounts (`namespace/name`) a binding names.
fn subjects(o: &Value, kind: &str) -> Value {
    let names: Vec<String> = o["subjects"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["kind"] == kind)
        .map(|s| {
            let name = s["name"].as_str().unwrap_or("");
            if kind == "ServiceAccount" {
                format!("{}/{name}", s["namespace"].as_str().unwrap_or(""))
            } else {
                name.to_string()
            }
        })
        .collect();
    json!(names.join(", "))
}

/// A column whose cell is the integer at `o[$section][$field]`, 0 when unset, as kube's
/// printers show replica and pod counts.
macro_rules! int_column {
    ($name:literal, $type:literal, $section:literal, $field:literal) => {
        ($name, $type, 0, |o, _| json!(int(&o[$section][$field])))
    };
}

/// The columns kube-apiserver's table printers (`pkg/printers/internalversion`) define for the
/// built-in kinds (after Name), wide ones included; `None` for a kind printed as Name and Age.
fn builtin_columns(kind: &str) -> Option<Vec<Column>> {
    let containers: Column = ("Containers", "string", 1, |o, _| {
        containers_of(template_spec(o)).0
    });
    let images: Column = ("Images", "string", 1, |o, _| {
        containers_of(template_spec(o)).1
    });
    let selector: Column = ("Selector", "string", 1, |o, _| {
        json!(format_selector(&o["spec"]["selector"]))
    });
    let age_col: Column = ("Age", "string", 0, age_cell);
    // Deployments and StatefulSets print readiness as `ready/desired` replicas.
    let ready_of_desired: Column = ("Ready", "string", 0, |o, _| {
        json!(format!(
            "{}/{}",
            int(&o["status"]["readyReplicas"]),
            int(&o["spec"]["replicas"])
        ))
    });
    Some(match kind {
        "Deployment" => vec![
            ready_of_desired,
            int_column!("Up-to-date", "string", "status", "updatedReplicas"),
            int_column!("Available", "string", "status", "availableReplicas"),
            age_col,
            containers,
            images,
            selector,
        ],
        "ReplicaSet" => vec![
            int_column!("Desired", "integer", "spec", "replicas"),
            int_column!("Current", "integer", "status", "replicas"),
            int_column!("Ready", "integer", "status", "readyReplicas"),
            age_col,
            containers,
            images,
            selector,
        ],
        "StatefulSet" => vec![ready_of_desired, age_col, containers, images],
        "DaemonSet" => vec![
            int_column!("Desired", "integer", "status", "desiredNumberScheduled"),
            int_column!("Current", "integer", "status", "currentNumberScheduled"),
            int_column!("Ready", "integer", "status", "numberReady"),
            int_column!("Up-to-date", "integer", "status", "updatedNumberScheduled"),
            int_column!("Available", "integer", "status", "numberAvailable"),
            ("Node Selector", "string", 0, |o, _| {
                json!(format_labels(&template_spec(o)["nodeSelector"]))
            }),
            age_col,
            containers,
            images,
            selector,
        ],
        "Job" => vec![
            ("Status", "string", 0, |o, _| job_status(o)),
            ("Completions", "string", 0, |o, _| job_completions(o)),
            ("Duration", "string", 0, job_duration),
            age_col,
            containers,
            images,
            selector,
        ],
        "CronJob" => vec![
            ("Schedule", "string", 0, |o, _| {
                o["spec"]["schedule"].clone()
            }),
            ("Timezone", "string", 0, |o, _| {
                string_or(&o["spec"]["timeZone"], "<none>")
            }),
            ("Suspend", "boolean", 0, |o, _| {
                json!(match o["spec"]["suspend"].as_bool() {
                    Some(true) => "True".to_string(),
                    Some(false) => "False".to_string(),
                    None => "<unset>".into(),
                })
            }),
            ("Active", "integer", 0, |o, _| count(&o["status"]["active"])),
            (
                "Last Schedule",
                "string",
                0,
                |o, now| match o["status"]["lastScheduleTime"].as_str() {
                    Some(t) => json!(age(t, now)),
                    None => json!("<none>"),
                },
            ),
            age_col,
            ("Containers", "string", 1, |o, _| {
                containers_of(cronjob_pod_spec(o)).0
            }),
            ("Images", "string", 1, |o, _| {
                containers_of(cronjob_pod_spec(o)).1
            }),
            ("Selector", "string", 1, |o, _| {
                json!(format_selector(
                    &o["spec"]["jobTemplate"]["spec"]["selector"]
                ))
            }),
        ],
        "Pod" => vec![
            ("Ready", "string", 0, |o, _| pod_ready(o)),
            ("Status", "string", 0, |o, _| json!(pod_status(o))),
            ("Restarts", "string", 0, pod_restarts),
            age_col,
            ("IP", "string", 1, |o, _| pod_ip(o)),
            ("Node", "string", 1, |o, _| {
                string_or(&o["spec"]["nodeName"], "<none>")
            }),
            ("Nominated Node", "string", 1, |o, _| {
                string_or(&o["status"]["nominatedNodeName"], "<none>")
            }),
            ("Readiness Gates", "string", 1, |o, _| readiness_gates(o)),
        ],
        "Service" => vec![
            ("Type", "string", 0, |o, _| o["spec"]["type"].clone()),
            ("Cluster-IP", "string", 0, |o, _| {
                string_or(
                    &o["spec"]["clusterIPs"][0]
                        .as_str()
                        .map_or(o["spec"]["clusterIP"].clone(), |s| json!(s)),
                    "<none>",
                )
            }),
            ("External-IP", "string", 0, |o, _| service_external_ip(o)),
            ("Port(s)", "string", 0, |o, _| service_ports(o)),
            age_col,
            ("Selector", "string", 1, |o, _| {
                json!(format_labels(&o["spec"]["selector"]))
            }),
        ],
        "Namespace" => vec![
            ("Status", "string", 0, |o, _| o["status"]["phase"].clone()),
            age_col,
        ],
        "Secret" => vec![
            ("Type", "string", 0, |o, _| o["type"].clone()),
            ("Data", "string", 0, |o, _| count(&o["data"])),
            age_col,
        ],
        "ConfigMap" => vec![
            ("Data", "string", 0, |o, _| {
                json!(int(&count(&o["data"])) + int(&count(&o["binaryData"])))
            }),
            age_col,
        ],
        "RoleBinding" | "ClusterRoleBinding" => vec![
            ("Role", "string", 0, |o, _| {
                json!(format!(
                    "{}/{}",
                    o["roleRef"]["kind"].as_str().unwrap_or(""),
                    o["roleRef"]["name"].as_str().unwrap_or("")
                ))
            }),
            age_col,
            ("Users", "string", 1, |o, _| subjects(o, "User")),
            ("Groups", "string", 1, |o, _| subjects(o, "Group")),
            ("ServiceAccounts", "string", 1, |o, _| {
                subjects(o, "ServiceAccount")
            }),
        ],
        // `printEvent`; events.k8s.io Events are the same objects under other field names.
        "Event" => vec![
            ("Last Seen", "string", 0, |o, now| {
                json!(event_times(o, now).1)
            }),
            ("Type", "string", 0, |o, _| o["type"].clone()),
            ("Reason", "string", 0, |o, _| o["reason"].clone()),
            ("Object", "string", 0, |o, _| {
                let io = event_field(o, "involvedObject", "regarding");
                let kind = io["kind"].as_str().unwrap_or("").to_lowercase();
                match io["name"].as_str().filter(|n| !n.is_empty()) {
                    Some(name) => json!(format!("{kind}/{name}")),
                    None => json!(kind),
                }
            }),
            ("Subobject", "string", 1, |o, _| {
                json!(
                    event_field(o, "involvedObject", "regarding")["fieldPath"]
                        .as_str()
                        .unwrap_or("")
                )
            }),
            ("Source", "string", 1, |o, _| json!(event_source(o))),
            ("Message", "string", 0, |o, _| {
                json!(
                    event_field(o, "message", "note")
                        .as_str()
                        .unwrap_or("")
                        .trim()
                )
            }),
            ("First Seen", "string", 1, |o, now| {
                json!(event_times(o, now).0)
            }),
            ("Count", "string", 1, |o, _| {
                let series = &o["series"];
                let count = if series.is_object() {
                    int(&series["count"])
                } else {
                    int(event_field(o, "count", "deprecatedCount"))
                };
                json!(if count == 0 { 1 } else { count })
            }),
            ("Name", "string", 1, |o, _| o["metadata"]["name"].clone()),
        ],
        "NetworkPolicy" => vec![
            ("Pod-Selector", "string", 0, |o, _| {
                json!(format_selector(&o["spec"]["podSelector"]))
            }),
            age_col,
        ],
        "Lease" => vec![
            ("Holder", "string", 0, |o, _| {
                json!(o["spec"]["holderIdentity"].as_str().unwrap_or(""))
            }),
            age_col,
        ],
        "PriorityClass" => vec![
            ("Value", "integer", 0, |o, _| json!(int(&o["value"]))),
            ("Global-Default", "boolean", 0, |o, _| {
                json!(o["globalDefault"].as_bool().unwrap_or(false))
            }),
            age_col,
            ("PreemptionPolicy", "string", 0, |o, _| {
                json!(o["preemptionPolicy"].as_str().unwrap_or(""))
            }),
        ],
        "RuntimeClass" => vec![
            ("Handler", "string", 0, |o, _| {
                json!(o["handler"].as_str().unwrap_or(""))
            }),
            age_col,
        ],
        "ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration" => vec![
            ("Webhooks", "integer", 0, |o, _| count(&o["webhooks"])),
            age_col,
        ],
        "PodDisruptionBudget" => vec![
            ("Min Available", "string", 0, |o, _| {
                int_or_string(&o["spec"]["minAvailable"])
            }),
            ("Max Unavailable", "string", 0, |o, _| {
                int_or_string(&o["spec"]["maxUnavailable"])
            }),
            int_column!(
                "Allowed Disruptions",
                "integer",
                "status",
                "disruptionsAllowed"
            ),
            age_col,
        ],
        "Ingress" => vec![
            ("Class", "string", 0, |o, _| {
                string_or(&o["spec"]["ingressClassName"], "<none>")
            }),
            ("Hosts", "string", 0, |o, _| ingress_hosts(o)),
            ("Address", "string", 0, |o, _| {
                json!(load_balancer_ingress(o).join(","))
            }),
            ("Ports", "string", 0, |o, _| {
                json!(
                    if o["spec"]["tls"].as_array().is_some_and(|t| !t.is_empty()) {
                        "80, 443"
                    } else {
                        "80"
                    }
                )
            }),
            age_col,
        ],
        "IngressClass" => vec![
            ("Controller", "string", 0, |o, _| {
                json!(o["spec"]["controller"].as_str().unwrap_or(""))
            }),
            ("Parameters", "string", 0, |o, _| {
                let p = &o["spec"]["parameters"];
                if !p.is_object() {
                    return json!("<none>");
                }
                let mut kind = p["kind"].as_str().unwrap_or("").to_string();
                if let Some(g) = p["apiGroup"].as_str() {
                    kind = format!("{kind}.{g}");
                }
                json!(format!("{kind}/{}", p["name"].as_str().unwrap_or("")))
            }),
            age_col,
        ],
        "Node" => vec![
            ("Status", "string", 0, |o, _| json!(node_status(o))),
            ("Roles", "string", 0, |o, _| json!(node_roles(o))),
            age_col,
            ("Version", "string", 0, |o, _| {
                json!(
                    o["status"]["nodeInfo"]["kubeletVersion"]
                        .as_str()
                        .unwrap_or("")
                )
            }),
            ("Internal-IP", "string", 1, |o, _| {
                node_address(o, "InternalIP")
            }),
            ("External-IP", "string", 1, |o, _| {
                node_address(o, "ExternalIP")
            }),
            ("OS-Image", "string", 1, |o, _| {
                string_or(&o["status"]["nodeInfo"]["osImage"], "<unknown>")
            }),
            ("Kernel-Version", "string", 1, |o, _| {
                let info = &o["status"]["nodeInfo"];
                let mut kernel = string_or(&info["kernelVersion"], "<unknown>")
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                if let Some(arch) = info["architecture"].as_str().filter(|a| !a.is_empty()) {
                    kernel = format!("{kernel} ({arch})");
                }
                json!(kernel)
            }),
            ("Container-Runtime", "string", 1, |o, _| {
                string_or(
                    &o["status"]["nodeInfo"]["containerRuntimeVersion"],
                    "<unknown>",
                )
            }),
        ],
        // Kinds kube-apiserver has no printer for get its default table: Name and Created At.
        "Role" | "ClusterRole" | "CustomResourceDefinition" => {
            vec![("Created At", "date", 0, |o, _| {
                o["metadata"]["creationTimestamp"].clone()
            })]
        }
        _ => return None,
    })
}

/// A core Event's field, or the events.k8s.io Event's field it maps to.
fn event_field<'a>(o: &'a Value, core: &str, events: &str) -> &'a Value {
    match &o[core] {
        Value::Null => &o[events],
        v => v,
    }
}

/// When an Event was first and last seen, as ages: the first timestamp or else the event
/// time; the series' last observation, or else the last timestamp, or else the first.
fn event_times(o: &Value, now: jiff::Timestamp) -> (String, String) {
    let when = |v: &Value| v.as_str().filter(|t| !t.is_empty()).map(|t| age(t, now));
    let first = when(event_field(o, "firstTimestamp", "deprecatedFirstTimestamp"))
        .unwrap_or_else(|| age(o["eventTime"].as_str().unwrap_or(""), now));
    let last = if o["series"].is_object() {
        age(o["series"]["lastObservedTime"].as_str().unwrap_or(""), now)
    } else {
        when(event_field(o, "lastTimestamp", "deprecatedLastTimestamp"))
            .unwrap_or_else(|| first.clone())
    };
    (first, last)
}

/// `formatEventSource`: the component (or reporting controller) and the host (or reporting
/// instance), comma-separated.
fn event_source(o: &Value) -> String {
    let first = |a: &Value, b: &Value| {
        a.as_str()
            .filter(|s| !s.is_empty())
            .or(b.as_str())
            .unwrap_or("")
            .to_string()
    };
    let source = event_field(o, "source", "deprecatedSource");
    let component = first(&source["component"], &o["reportingController"]);
    let instance = first(&source["host"], &o["reportingInstance"]);
    match (component.is_empty(), instance.is_empty()) {
        (true, true) => String::new(),
        (_, true) => component,
        _ => format!("{component}, {instance}"),
    }
}

/// `printNode`'s status: the Ready condition, and whether scheduling is disabled.
fn node_status(o: &Value) -> String {
    let mut status: Vec<&str> = o["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["type"] == "Ready")
        .take(1)
        .map(|c| {
            if c["status"] == "True" {
                "Ready"
            } else {
                "NotReady"
            }
        })
        .collect();
    if status.is_empty() {
        status.push("Unknown");
    }
    if o["spec"]["unschedulable"] == true {
        status.push("SchedulingDisabled");
    }
    status.join(",")
}

/// The roles a node's labels give it (`node-role.kubernetes.io/<role>`, `kubernetes.io/role`).
fn node_roles(o: &Value) -> String {
    let mut roles: Vec<&str> = o["metadata"]["labels"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| match k.strip_prefix("node-role.kubernetes.io/") {
            Some(role) => Some(role),
            None if k == "kubernetes.io/role" => v.as_str(),
            None => None,
        })
        .filter(|r| !r.is_empty())
        .collect();
    roles.sort_unstable();
    roles.dedup();
    if roles.is_empty() {
        "<none>".into()
    } else {
        roles.join(",")
    }
}

fn node_address(o: &Value, ty: &str) -> Value {
    let addr = o["status"]["addresses"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["type"] == ty)
        .and_then(|a| a["address"].as_str());
    json!(addr.unwrap_or("<none>"))
}

/// An IntOrString field as `IntOrString.String()` prints it, `N/A` when unset.
fn int_or_string(v: &Value) -> Value {
    match v {
        Value::Number(n) => json!(n.to_string()),
        Value::String(s) => json!(s),
        _ => json!("N/A"),
    }
}

/// `formatHosts`: up to three rule hosts, `*` when none names one.
fn ingress_hosts(o: &Value) -> Value {
    let rules = o["spec"]["rules"].as_array().cloned().unwrap_or_default();
    let hosts: Vec<&str> = rules
        .iter()
        .take(3)
        .filter_map(|r| r["host"].as_str().filter(|h| !h.is_empty()))
        .collect();
    if hosts.is_empty() {
        return json!("*");
    }
    let mut text = hosts.join(",");
    if rules.len() > 3 {
        text = format!("{text} + {} more...", rules.len() - 3);
    }
    json!(text)
}

/// The column definition of objects' names (kube describes it with ObjectMeta's `name` doc).
fn name_column(priority: i64) -> Value {
    json!({"name": "Name", "type": "string", "format": "name", "description": NAME_DESCRIPTION, "priority": priority})
}

const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";

/// A cell of a CRD's printer column, as kube's custom-resource table convertor makes it: null
/// where the path finds nothing or the value does not have the column's type, a string
/// column's value printed as JSONPath prints it, a date column as an age.
fn custom_cell(v: Value, ty: &str, now: jiff::Timestamp) -> Value {
    match (ty, v) {
        (_, Value::Null) => Value::Null,
        ("string", Value::String(s)) => json!(s),
        ("string", other) => json!(other.to_string()),
        ("integer", Value::Number(n)) => n
            .as_i64()
            .map(|i| json!(i))
            .or_else(|| n.as_f64().map(|f| json!(f as i64)))
            .unwrap_or(Value::Null),
        ("number", Value::Number(n)) => n.as_f64().map(|f| json!(f)).unwrap_or(Value::Null),
        ("boolean", Value::Bool(b)) => json!(b),
        ("date", Value::String(s)) => json!(age(&s, now)),
        _ => Value::Null,
    }
}

/// Sets the rows' objects as `includeObject` asks (kube's default: `Metadata`, each object as
/// PartialObjectMetadata; `None` leaves them out; `Object` keeps them whole).
pub fn include_objects(table: &mut Value, include: Option<&str>) {
    let Some(rows) = table["rows"].as_array_mut() else {
        return;
    };
    for row in rows {
        let Some(row) = row.as_object_mut() else {
            continue;
        };
        match include {
            Some("Object") => {}
            Some("None") => {
                row.remove("object");
            }
            _ => {
                let object = row.get("object").cloned().unwrap_or(Value::Null);
                row.insert(
                    "object".into(),
                    crate::meta::partial_object_metadata(&object, "v1"),
                );
            }
        }
    }
}

/// The Table of `items` for `res`.
pub fn table(res: &Resource, items: &[Value], list_meta: Value) -> Value {
    let now = jiff::Timestamp::now();
    let computed = if res.custom {
        None
    } else {
        builtin_columns(&res.kind)
    };
    // Kube's printers put the name first, except where they place it themselves (Events).
    let name_first = !computed.iter().flatten().any(|c| c.0 == "Name");
    let mut defs = Vec::new();
    if name_first {
        defs.push(name_column(0));
    }
    let mut cols: Vec<(String, String)> = Vec::new();
    for c in &res.printer_columns {
        let name = c["name"].as_str().unwrap_or("").to_string();
        let ty = c["type"].as_str().unwrap_or("string").to_string();
        defs.push(json!({"name": name, "type": ty, "format": c["format"].as_str().unwrap_or(""),
            "description": c["description"].as_str().filter(|d| !d.is_empty()).map_or_else(
                || format!("Custom resource definition column (in JSONPath format): {}", c["jsonPath"].as_str().unwrap_or("")),
                str::to_string), "priority": c["priority"].as_i64().unwrap_or(0)}));
        cols.push((c["jsonPath"].as_str().unwrap_or("").to_string(), ty));
    }
    for (name, ty, priority, _) in computed.iter().flatten() {
        if *name == "Name" {
            defs.push(name_column(*priority));
            continue;
        }
        let description = if *name == "Age" {
            "CreationTimestamp is a timestamp representing the server time when this object was created."
        } else {
            ""
        };
        defs.push(json!({"name": name, "type": ty, "format": "", "description": description, "priority": priority}));
    }
    if res.printer_columns.is_empty() && computed.is_none() {
        defs.push(json!({"name": "Age", "type": "date", "format": "", "description": "CreationTimestamp", "priority": 0}));
        cols.push((".metadata.creationTimestamp".into(), "date".into()));
    }
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            let mut cells = Vec::new();
            if name_first {
                cells.push(o["metadata"]["name"].clone());
            }
            for (_, _, _, get) in computed.iter().flatten() {
                cells.push(cell(get(o, now)));
            }
            for (path, ty) in &cols {
                cells.push(custom_cell(json_path(o, path), ty, now));
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
    fn durations_and_selectors_print_as_kube_does() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(150), "2m30s");
        assert_eq!(human_duration(600), "10m");
        assert_eq!(human_duration(3 * 3600 + 60), "3h1m");
        assert_eq!(human_duration(30 * 3600), "30h");
        assert_eq!(human_duration(3 * 86400 + 3600), "3d1h");
        assert_eq!(human_duration(400 * 86400), "400d");
        let sel = json!({"matchLabels": {"b": "2", "a": "1"},
            "matchExpressions": [{"key": "env", "operator": "In", "values": ["x", "y"]}, {"key": "k", "operator": "DoesNotExist"}]});
        assert_eq!(format_selector(&sel), "a=1,b=2,env in (x,y),!k");
        assert_eq!(format_selector(&Value::Null), "<none>");
    }

    #[test]
    fn a_crashing_pod_shows_its_waiting_reason_and_restarts() {
        let now = jiff::Timestamp::now();
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": "Running", "containerStatuses": [{"name": "c", "ready": false, "restartCount": 3,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}});
        assert_eq!(pod_status(&pod), "CrashLoopBackOff");
        assert_eq!(pod_restarts(&pod, now), "3");
        assert_eq!(pod_ready(&pod), "0/1");
    }

    #[test]
    fn a_node_prints_its_readiness_roles_and_addresses() {
        let node = json!({"metadata": {"labels": {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "worker"}},
            "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "Ready", "status": "False"}], "addresses": [{"type": "InternalIP", "address": "10.1.2.3"}]}});
        assert_eq!(node_status(&node), "NotReady,SchedulingDisabled");
        assert_eq!(node_roles(&node), "control-plane,worker");
        assert_eq!(node_address(&node, "InternalIP"), "10.1.2.3");
        assert_eq!(node_address(&node, "ExternalIP"), "<none>");
    }

    #[test]
    fn events_print_last_seen_first_and_their_name_only_wide() {
        let now = jiff::Timestamp::now();
        let seen = (now - jiff::SignedDuration::from_secs(90)).to_string();
        let event = json!({"metadata": {"name": "w1.a"}, "type": "Normal", "reason": "Made",
            "involvedObject": {"kind": "Widget", "name": "w1", "fieldPath": "spec"},
            "source": {"component": "ctl", "host": "n1"}, "message": " made \n",
            "firstTimestamp": seen, "count": 2});
        let columns = builtin_columns("Event").expect("events have a printer");
        let row: Vec<(&str, i64, Value)> = columns
            .iter()
            .map(|(name, _, priority, get)| (*name, *priority, get(&event, now)))
            .collect();
        assert_eq!(
            row,
            vec![
                ("Last Seen", 0, json!("90s")),
                ("Type", 0, json!("Normal")),
                ("Reason", 0, json!("Made")),
                ("Object", 0, json!("widget/w1")),
                ("Subobject", 1, json!("spec")),
                ("Source", 1, json!("ctl, n1")),
                ("Message", 0, json!("made")),
                ("First Seen", 1, json!("90s")),
                ("Count", 1, json!(2)),
                ("Name", 1, json!("w1.a")),
            ]
        );
    }

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
