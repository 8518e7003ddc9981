//! Defaulting of built-in kinds, as kube-apiserver applies it when it decodes a create or an
//! update (`pkg/apis/<group>/v1/defaults.go` and the generated per-field defaults), plus the
//! values its storage strategies and default admission plugins set on create only (a Pod's
//! phase and priority, a Job's selector, a Service's IP families, a Namespace's finalizer).
//!
//! Guarantees: a field the object sets is never changed (kube's defaulters only fill what is
//! unset, where Go's zero value — `""`, `0`, absent — counts as unset for non-pointer fields);
//! defaulting an already defaulted object changes nothing, so repeated writes stay no-ops.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value, json};

use crate::registry::Resource;

/// The value at `key` (null when absent: a map's `[]` would panic).
fn at<'a>(m: &'a Map<String, Value>, key: &str) -> &'a Value {
    m.get(key).unwrap_or(&Value::Null)
}

/// Sets `key` when it is absent or null (a Go pointer field that is nil).
fn or_set(m: &mut Map<String, Value>, key: &str, v: Value) {
    if m.get(key).is_none_or(Value::is_null) {
        m.insert(key.into(), v);
    }
}

/// Sets `key` when it is absent, null, `""` or `0` (a Go value field at its zero value).
fn or_zero(m: &mut Map<String, Value>, key: &str, v: Value) {
    let zero = match m.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        _ => false,
    };
    if zero {
        m.insert(key.into(), v);
    }
}

/// The object at `key`, created empty when absent.
fn obj<'a>(m: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Map<String, Value>> {
    if m.get(key).is_none_or(Value::is_null) {
        m.insert(key.into(), json!({}));
    }
    m.get_mut(key).and_then(Value::as_object_mut)
}

/// The object at `key` only when present.
fn some<'a>(m: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Map<String, Value>> {
    m.get_mut(key).and_then(Value::as_object_mut)
}

/// Each object item of the list at `key`.
fn each<'a>(
    m: &'a mut Map<String, Value>,
    key: &str,
) -> impl Iterator<Item = &'a mut Map<String, Value>> {
    m.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

fn is_empty(m: &Map<String, Value>, key: &str) -> bool {
    match m.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(o)) => o.is_empty(),
        Some(Value::String(s)) => s.is_empty(),
        _ => false,
    }
}

/// Applies kube's defaults to `obj`, a built-in kind's object (custom resources are defaulted
/// from their schema instead). `create` adds what kube sets only when an object is created.
pub fn apply(res: &Resource, obj: &mut Value, create: bool) {
    if res.custom {
        return;
    }
    let Some(o) = obj.as_object_mut() else { return };
    match (res.group.as_str(), res.kind.as_str()) {
        ("", "Pod") => pod(o, create),
        ("", "PodTemplate") => {
            if let Some(t) = some(o, "template") {
                pod_template(t);
            }
        }
        ("", "Service") => service(o, create),
        ("", "Secret") => or_zero(o, "type", json!("Opaque")),
        ("", "Namespace") => namespace(o, create),
        ("", "PersistentVolumeClaim") => pvc(o),
        ("", "PersistentVolume") => {
            if let Some(s) = obj_status(o) {
                or_zero(s, "phase", json!("Pending"));
            }
            if let Some(s) = some(o, "spec") {
                or_zero(s, "persistentVolumeReclaimPolicy", json!("Retain"));
                or_set(s, "volumeMode", json!("Filesystem"));
            }
        }
        ("", "Endpoints") => {
            for ss in each(o, "subsets") {
                for p in each(ss, "ports") {
                    or_zero(p, "protocol", json!("TCP"));
                }
            }
        }
        ("apps", "Deployment") => deployment(o),
        ("apps", "ReplicaSet") => {
            if let Some(s) = some(o, "spec") {
                or_set(s, "replicas", json!(1));
                template_of(s);
            }
        }
        ("apps", "StatefulSet") => statefulset(o),
        ("apps", "DaemonSet") => daemonset(o),
        ("batch", "Job") => job(o, create),
        ("batch", "CronJob") => cronjob(o),
        ("discovery.k8s.io", "EndpointSlice") => {
            for p in each(o, "ports") {
                or_set(p, "name", json!(""));
                or_set(p, "protocol", json!("TCP"));
            }
        }
        ("networking.k8s.io", "NetworkPolicy") => network_policy(o),
        ("networking.k8s.io", "IngressClass") => {
            if let Some(p) = some(o, "spec").and_then(|s| some(s, "parameters")) {
                or_set(p, "scope", json!("Cluster"));
            }
        }
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
            if let Some(r) = some(o, "roleRef") {
                or_zero(r, "apiGroup", json!("rbac.authorization.k8s.io"));
            }
            for s in each(o, "subjects") {
                if is_empty(s, "apiGroup") {
                    // A ServiceAccount subject keeps the empty group, which JSON omits.
                    if let Some("User" | "Group") = s.get("kind").and_then(Value::as_str) {
                        s.insert("apiGroup".into(), json!("rbac.authorization.k8s.io"));
                    }
                }
            }
        }
        ("storage.k8s.io", "StorageClass") => {
            or_set(o, "reclaimPolicy", json!("Delete"));
            or_set(o, "volumeBindingMode", json!("Immediate"));
        }
        ("scheduling.k8s.io", "PriorityClass") => {
            or_set(o, "preemptionPolicy", json!("PreemptLowerPriority"));
        }
        ("autoscaling", "HorizontalPodAutoscaler") => hpa(o),
        (
            "admissionregistration.k8s.io",
            kind @ ("ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration"),
        ) => {
            let mutating = kind == "MutatingWebhookConfiguration";
            for w in each(o, "webhooks") {
                webhook(w, mutating);
            }
        }
        _ => {}
    }
}

fn obj_status(o: &mut Map<String, Value>) -> Option<&mut Map<String, Value>> {
    obj(o, "status")
}

fn namespace(o: &mut Map<String, Value>, create: bool) {
    let name = at(o, "metadata")["name"].as_str().unwrap_or("").to_string();
    if !name.is_empty()
        && let Some(labels) = some(o, "metadata").and_then(|m| obj(m, "labels"))
    {
        labels.insert("kubernetes.io/metadata.name".into(), json!(name));
    }
    if create {
        // The namespace strategy: the `kubernetes` finalizer and an Active phase.
        if let Some(s) = obj(o, "spec") {
            or_set(s, "finalizers", json!(["kubernetes"]));
        }
    }
    if let Some(s) = obj_status(o) {
        or_zero(s, "phase", json!("Active"));
    }
}

fn pvc(o: &mut Map<String, Value>) {
    if let Some(s) = obj_status(o) {
        or_zero(s, "phase", json!("Pending"));
    }
    if let Some(s) = some(o, "spec") {
        or_set(s, "volumeMode", json!("Filesystem"));
    }
}

/// `ParseImageName`: an image without tag nor digest is `latest`.
fn pull_policy(image: &str) -> &'static str {
    let (name, digest) = match image.split_once('@') {
        Some((n, _)) => (n, true),
        None => (image, false),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    let tag = last.split_once(':').map(|(_, t)| t);
    match tag {
        Some("latest") => "Always",
        None if !digest => "Always",
        _ => "IfNotPresent",
    }
}

fn http_get(h: &mut Map<String, Value>) {
    or_zero(h, "path", json!("/"));
    or_zero(h, "scheme", json!("HTTP"));
}

fn probe(p: &mut Map<String, Value>) {
    or_zero(p, "timeoutSeconds", json!(1));
    or_zero(p, "periodSeconds", json!(10));
    or_zero(p, "successThreshold", json!(1));
    or_zero(p, "failureThreshold", json!(3));
    if let Some(h) = some(p, "httpGet") {
        http_get(h);
    }
    if let Some(g) = some(p, "grpc") {
        or_set(g, "service", json!(""));
    }
}

fn field_ref(m: &mut Map<String, Value>) {
    if let Some(f) = some(m, "fieldRef") {
        or_zero(f, "apiVersion", json!("v1"));
    }
}

fn container(c: &mut Map<String, Value>) {
    // `resources` is a struct value in Go, serialised as `{}` when empty.
    or_set(c, "resources", json!({}));
    if is_empty(c, "imagePullPolicy") {
        let policy = pull_policy(c.get("image").and_then(Value::as_str).unwrap_or(""));
        c.insert("imagePullPolicy".into(), json!(policy));
    }
    or_zero(c, "terminationMessagePath", json!("/dev/termination-log"));
    or_zero(c, "terminationMessagePolicy", json!("File"));
    for p in each(c, "ports") {
        or_zero(p, "protocol", json!("TCP"));
    }
    for e in each(c, "env") {
        if let Some(from) = some(e, "valueFrom") {
            field_ref(from);
            if let Some(f) = some(from, "fileKeyRef") {
                or_set(f, "optional", json!(false));
            }
        }
    }
    for key in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = some(c, key) {
            probe(p);
        }
    }
    if let Some(l) = some(c, "lifecycle") {
        for key in ["postStart", "preStop"] {
            if let Some(h) = some(l, key).and_then(|h| some(h, "httpGet")) {
                http_get(h);
            }
        }
    }
}

/// The volume sources a Volume may name besides its name.
fn has_source(v: &Map<String, Value>) -> bool {
    v.iter().any(|(k, val)| k != "name" && !val.is_null())
}

fn volume(v: &mut Map<String, Value>) {
    if !has_source(v) {
        v.insert("emptyDir".into(), json!({}));
    }
    if let Some(h) = some(v, "hostPath") {
        or_set(h, "type", json!(""));
    }
    for key in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(s) = some(v, key) {
            or_set(s, "defaultMode", json!(420));
        }
    }
    if let Some(d) = some(v, "downwardAPI") {
        for i in each(d, "items") {
            field_ref(i);
        }
    }
    if let Some(p) = some(v, "projected") {
        for src in each(p, "sources") {
            if let Some(d) = some(src, "downwardAPI") {
                for i in each(d, "items") {
                    field_ref(i);
                }
            }
            if let Some(t) = some(src, "serviceAccountToken") {
                or_set(t, "expirationSeconds", json!(3600));
            }
        }
    }
    if let Some(i) = some(v, "iscsi") {
        or_zero(i, "iscsiInterface", json!("default"));
    }
    if let Some(r) = some(v, "rbd") {
        or_zero(r, "pool", json!("rbd"));
        or_zero(r, "user", json!("admin"));
        or_zero(r, "keyring", json!("/etc/ceph/keyring"));
    }
    if let Some(a) = some(v, "azureDisk") {
        or_set(a, "cachingMode", json!("ReadWrite"));
        or_set(a, "fsType", json!("ext4"));
        or_set(a, "readOnly", json!(false));
        or_set(a, "kind", json!("Shared"));
    }
    if let Some(s) = some(v, "scaleIO") {
        or_zero(s, "storageMode", json!("ThinProvisioned"));
        or_zero(s, "fsType", json!("xfs"));
    }
    if let Some(spec) = some(v, "ephemeral")
        .and_then(|e| some(e, "volumeClaimTemplate"))
        .and_then(|t| some(t, "spec"))
    {
        or_set(spec, "volumeMode", json!("Filesystem"));
    }
}

/// `SetDefaults_PodSpec` and the per-field defaults under it (also for pod templates).
fn pod_spec(s: &mut Map<String, Value>) {
    or_zero(s, "dnsPolicy", json!("ClusterFirst"));
    or_zero(s, "restartPolicy", json!("Always"));
    or_set(s, "securityContext", json!({}));
    or_set(s, "terminationGracePeriodSeconds", json!(30));
    or_zero(s, "schedulerName", json!("default-scheduler"));
    for v in each(s, "volumes") {
        volume(v);
    }
    for key in ["initContainers", "containers", "ephemeralContainers"] {
        for c in each(s, key) {
            container(c);
        }
    }
}

fn pod_template(t: &mut Map<String, Value>) {
    if let Some(s) = obj(t, "spec") {
        pod_spec(s);
    }
}

/// The pod template at `spec.template` of a workload's spec.
fn template_of(spec: &mut Map<String, Value>) {
    if let Some(t) = some(spec, "template") {
        pod_template(t);
    }
}

/// A container's requests default to its limits.
fn requests_from_limits(c: &mut Map<String, Value>) {
    let Some(r) = some(c, "resources") else {
        return;
    };
    let Some(limits) = r.get("limits").and_then(Value::as_object).cloned() else {
        return;
    };
    if let Some(req) = obj(r, "requests") {
        for (k, v) in limits {
            req.entry(k).or_insert(v);
        }
    }
}

/// The QoS class kube computes for a new pod (`GetPodQOS`, from containers and init
/// containers' cpu and memory).
fn qos_class(spec: &Map<String, Value>) -> &'static str {
    let mut any = false;
    let mut guaranteed = true;
    let containers = ["initContainers", "containers"]
        .iter()
        .filter_map(|k| spec.get(*k).and_then(Value::as_array))
        .flatten();
    for c in containers {
        let r = &c["resources"];
        for res in ["cpu", "memory"] {
            let req = &r["requests"][res];
            let lim = &r["limits"][res];
            if !req.is_null() || !lim.is_null() {
                any = true;
            }
            if lim.is_null() || (!req.is_null() && req != lim) {
                guaranteed = false;
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

fn pod(o: &mut Map<String, Value>, create: bool) {
    let Some(s) = some(o, "spec") else { return };
    for key in ["containers", "initContainers"] {
        for c in each(s, key) {
            requests_from_limits(c);
        }
    }
    or_set(s, "enableServiceLinks", json!(true));
    if s.get("hostNetwork").and_then(Value::as_bool) == Some(true) {
        for key in ["containers", "initContainers"] {
            for c in each(s, key) {
                for p in each(c, "ports") {
                    let cp = p.get("containerPort").cloned().unwrap_or(json!(0));
                    or_zero(p, "hostPort", cp);
                }
            }
        }
    }
    pod_spec(s);
    if !create {
        return;
    }
    // The default admission plugins (ServiceAccount, Priority, DefaultTolerationSeconds) and
    // the pod strategy's PrepareForCreate.
    or_zero(s, "serviceAccountName", json!("default"));
    let sa = at(s, "serviceAccountName").clone();
    or_zero(s, "serviceAccount", sa);
    if s.get("priorityClassName")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        or_set(s, "priority", json!(0));
    }
    or_set(s, "preemptionPolicy", json!("PreemptLowerPriority"));
    let tolerations = s.entry("tolerations").or_insert_with(|| json!([]));
    if let Some(list) = tolerations.as_array_mut() {
        for key in [
            "node.kubernetes.io/not-ready",
            "node.kubernetes.io/unreachable",
        ] {
            let tolerated = list.iter().any(|t| {
                (t["key"] == key || t["key"].as_str().is_none_or(str::is_empty))
                    && (t["effect"] == "NoExecute"
                        || t["effect"].as_str().is_none_or(str::is_empty))
            });
            if !tolerated {
                list.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}));
            }
        }
    }
    let qos = qos_class(s);
    if let Some(st) = obj_status(o) {
        or_zero(st, "phase", json!("Pending"));
        or_zero(st, "qosClass", json!(qos));
    }
}

fn service(o: &mut Map<String, Value>, create: bool) {
    // The status and its load balancer are struct values in Go, serialised even when empty.
    if let Some(st) = obj_status(o) {
        or_set(st, "loadBalancer", json!({}));
    }
    let Some(s) = some(o, "spec") else { return };
    or_zero(s, "sessionAffinity", json!("None"));
    match at(s, "sessionAffinity").as_str() {
        Some("None") => {
            s.remove("sessionAffinityConfig");
        }
        Some("ClientIP")
            if at(s, "sessionAffinityConfig")["clientIP"]["timeoutSeconds"].is_null() =>
        {
            s.insert(
                "sessionAffinityConfig".into(),
                json!({"clientIP": {"timeoutSeconds": 10800}}),
            );
        }
        _ => {}
    }
    or_zero(s, "type", json!("ClusterIP"));
    for p in each(s, "ports") {
        or_zero(p, "protocol", json!("TCP"));
        let port = p.get("port").cloned().unwrap_or(json!(0));
        or_zero(p, "targetPort", port);
    }
    let ty = at(s, "type").as_str().unwrap_or("").to_string();
    let external =
        matches!(ty.as_str(), "LoadBalancer" | "NodePort") || !is_empty(s, "externalIPs");
    if external {
        or_zero(s, "externalTrafficPolicy", json!("Cluster"));
    }
    if matches!(ty.as_str(), "NodePort" | "LoadBalancer" | "ClusterIP") {
        or_set(s, "internalTrafficPolicy", json!("Cluster"));
    }
    if ty == "LoadBalancer" {
        or_set(s, "allocateLoadBalancerNodePorts", json!(true));
    }
    if create && ty != "ExternalName" {
        // The service REST storage's IP family defaulting on a single-stack IPv4 cluster.
        let headless = at(s, "clusterIP") == "None";
        let policy = if headless && is_empty(s, "selector") {
            "RequireDualStack"
        } else {
            "SingleStack"
        };
        or_set(s, "ipFamilyPolicy", json!(policy));
        if is_empty(s, "ipFamilies") {
            s.insert("ipFamilies".into(), json!(["IPv4"]));
        }
        if headless && is_empty(s, "clusterIPs") {
            s.insert("clusterIPs".into(), json!(["None"]));
        }
    }
}

fn deployment(o: &mut Map<String, Value>) {
    // A struct value in Go, serialised as `{}` before any controller writes it.
    obj_status(o);
    let Some(s) = some(o, "spec") else { return };
    or_set(s, "replicas", json!(1));
    if let Some(st) = obj(s, "strategy") {
        or_zero(st, "type", json!("RollingUpdate"));
        if at(st, "type") == "RollingUpdate"
            && let Some(ru) = obj(st, "rollingUpdate")
        {
            or_set(ru, "maxUnavailable", json!("25%"));
            or_set(ru, "maxSurge", json!("25%"));
        }
    }
    or_set(s, "revisionHistoryLimit", json!(10));
    or_set(s, "progressDeadlineSeconds", json!(600));
    template_of(s);
}

fn daemonset(o: &mut Map<String, Value>) {
    let Some(s) = some(o, "spec") else { return };
    if let Some(st) = obj(s, "updateStrategy") {
        or_zero(st, "type", json!("RollingUpdate"));
        if at(st, "type") == "RollingUpdate"
            && let Some(ru) = obj(st, "rollingUpdate")
        {
            or_set(ru, "maxUnavailable", json!(1));
            or_set(ru, "maxSurge", json!(0));
        }
    }
    or_set(s, "revisionHistoryLimit", json!(10));
    template_of(s);
}

fn statefulset(o: &mut Map<String, Value>) {
    let Some(s) = some(o, "spec") else { return };
    or_zero(s, "podManagementPolicy", json!("OrderedReady"));
    if let Some(st) = obj(s, "updateStrategy") {
        if is_empty(st, "type") {
            st.insert("type".into(), json!("RollingUpdate"));
            or_set(st, "rollingUpdate", json!({}));
        }
        if at(st, "type") == "RollingUpdate"
            && let Some(ru) = some(st, "rollingUpdate")
        {
            or_set(ru, "partition", json!(0));
        }
    }
    if let Some(p) = obj(s, "persistentVolumeClaimRetentionPolicy") {
        or_zero(p, "whenDeleted", json!("Retain"));
        or_zero(p, "whenScaled", json!("Retain"));
    }
    or_set(s, "replicas", json!(1));
    or_set(s, "revisionHistoryLimit", json!(10));
    template_of(s);
    for t in each(s, "volumeClaimTemplates") {
        pvc(t);
    }
}

fn pod_failure_policy(spec: &mut Map<String, Value>) {
    if let Some(p) = some(spec, "podFailurePolicy") {
        for r in each(p, "rules") {
            for c in each(r, "onPodConditions") {
                or_zero(c, "status", json!("True"));
            }
        }
    }
}

fn job(o: &mut Map<String, Value>, create: bool) {
    let uid = at(o, "metadata")["uid"].as_str().unwrap_or("").to_string();
    let name = at(o, "metadata")["name"].as_str().unwrap_or("").to_string();
    let Some(s) = some(o, "spec") else { return };
    if s.get("completions").is_none_or(Value::is_null)
        && s.get("parallelism").is_none_or(Value::is_null)
    {
        s.insert("completions".into(), json!(1));
    }
    or_set(s, "parallelism", json!(1));
    let backoff = if s.get("backoffLimitPerIndex").is_some_and(|v| !v.is_null()) {
        json!(i32::MAX)
    } else {
        json!(6)
    };
    or_set(s, "backoffLimit", backoff);
    or_set(s, "completionMode", json!("NonIndexed"));
    or_set(s, "suspend", json!(false));
    let replacement = if s.get("podFailurePolicy").is_some_and(|v| !v.is_null()) {
        "Failed"
    } else {
        "TerminatingOrFailed"
    };
    or_set(s, "podReplacementPolicy", json!(replacement));
    or_set(s, "manualSelector", json!(false));
    pod_failure_policy(s);
    // The job strategy generates the selector and the pod labels that match it.
    if create && at(s, "manualSelector") != true && !uid.is_empty() {
        s.insert(
            "selector".into(),
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
        );
        if let Some(labels) = obj(s, "template")
            .and_then(|t| obj(t, "metadata"))
            .and_then(|m| obj(m, "labels"))
        {
            for (k, v) in [
                ("batch.kubernetes.io/controller-uid", &uid),
                ("batch.kubernetes.io/job-name", &name),
                ("controller-uid", &uid),
                ("job-name", &name),
            ] {
                labels.insert(k.into(), json!(v));
            }
        }
    }
    template_of(s);
    let labels = at(s, "template")["metadata"]["labels"].clone();
    if labels.is_object()
        && let Some(m) = some(o, "metadata")
        && is_empty(m, "labels")
    {
        m.insert("labels".into(), labels);
    }
}

fn cronjob(o: &mut Map<String, Value>) {
    let Some(s) = some(o, "spec") else { return };
    or_zero(s, "concurrencyPolicy", json!("Allow"));
    or_set(s, "suspend", json!(false));
    or_set(s, "successfulJobsHistoryLimit", json!(3));
    or_set(s, "failedJobsHistoryLimit", json!(1));
    if let Some(js) = some(s, "jobTemplate").and_then(|t| some(t, "spec")) {
        pod_failure_policy(js);
        template_of(js);
    }
}

fn network_policy(o: &mut Map<String, Value>) {
    let Some(s) = some(o, "spec") else { return };
    for dir in ["ingress", "egress"] {
        for rule in each(s, dir) {
            for p in each(rule, "ports") {
                or_set(p, "protocol", json!("TCP"));
            }
        }
    }
    if is_empty(s, "policyTypes") {
        let mut types = vec![json!("Ingress")];
        if !is_empty(s, "egress") {
            types.push(json!("Egress"));
        }
        s.insert("policyTypes".into(), Value::Array(types));
    }
}

fn hpa(o: &mut Map<String, Value>) {
    let Some(s) = some(o, "spec") else { return };
    or_set(s, "minReplicas", json!(1));
    if is_empty(s, "metrics") {
        s.insert(
            "metrics".into(),
            json!([{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 80}}}]),
        );
    }
    if let Some(b) = some(s, "behavior") {
        let up = json!({"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
            {"type": "Pods", "value": 4, "periodSeconds": 15},
            {"type": "Percent", "value": 100, "periodSeconds": 15}]});
        let down = json!({"selectPolicy": "Max", "policies": [
            {"type": "Percent", "value": 100, "periodSeconds": 15}]});
        for (key, default) in [("scaleUp", up), ("scaleDown", down)] {
            let mut rules = default;
            if let (Some(given), Some(r)) =
                (b.get(key).and_then(Value::as_object), rules.as_object_mut())
            {
                for (k, v) in given {
                    if !v.is_null() {
                        r.insert(k.clone(), v.clone());
                    }
                }
            }
            b.insert(key.into(), rules);
        }
    }
}

fn webhook(w: &mut Map<String, Value>, mutating: bool) {
    or_set(w, "failurePolicy", json!("Fail"));
    or_set(w, "matchPolicy", json!("Equivalent"));
    or_set(w, "namespaceSelector", json!({}));
    or_set(w, "objectSelector", json!({}));
    or_set(w, "timeoutSeconds", json!(10));
    if mutating {
        or_set(w, "reinvocationPolicy", json!("Never"));
    }
    for r in each(w, "rules") {
        or_set(r, "scope", json!("*"));
    }
    if let Some(svc) = some(w, "clientConfig").and_then(|c| some(c, "service")) {
        or_set(svc, "port", json!(443));
    }
}

/// The cluster IP range addresses are allocated from (kubeadm's default service CIDR).
const CLUSTER_IP_BASE: u32 = 0x0a60_0000; // 10.96.0.0/12
const CLUSTER_IP_SIZE: u32 = 1 << 20;
/// kube-apiserver's default `--service-node-port-range`.
const NODE_PORTS: std::ops::RangeInclusive<i64> = 30000..=32767;

fn random_below(n: u32) -> u32 {
    (uuid::Uuid::new_v4().as_u128() % u128::from(n)) as u32
}

/// Picks a free value by probing from a random start, as kube's bitmap allocators do; `None`
/// when every value is taken.
fn pick<T: Eq + std::hash::Hash>(
    size: u32,
    taken: &HashSet<T>,
    at: impl Fn(u32) -> Option<T>,
) -> Option<T> {
    let start = random_below(size);
    (0..size)
        .filter_map(|i| at((start + i) % size))
        .find(|v| !taken.contains(v))
}

/// What one stored Service holds of the cluster IP and node port ranges.
#[derive(Clone, Default)]
struct Allocated {
    cluster_ip: Option<String>,
    node_ports: Vec<i64>,
}

impl Allocated {
    /// Reads only the allocated fields of a stored Service; a Service that does not decode
    /// (never the case for what the server stored) holds nothing.
    fn of(raw: &str) -> Self {
        #[derive(serde::Deserialize)]
        struct Service {
            #[serde(default)]
            spec: Spec,
        }
        #[derive(Default, serde::Deserialize)]
        struct Spec {
            #[serde(default, rename = "clusterIP")]
            cluster_ip: Option<String>,
            #[serde(default)]
            ports: Vec<Port>,
        }
        #[derive(serde::Deserialize)]
        struct Port {
            #[serde(default, rename = "nodePort")]
            node_port: Option<i64>,
        }
        let Ok(service) = serde_json::from_str::<Service>(raw) else {
            return Allocated::default();
        };
        Allocated {
            cluster_ip: service.spec.cluster_ip,
            node_ports: service
                .spec
                .ports
                .iter()
                .filter_map(|p| p.node_port)
                .collect(),
        }
    }
}

/// The allocations of the stored Services, each read once per stored version: allocating for
/// one more Service is a pass over the keys, not a parse of every Service (which made creating
/// N Services quadratic in parsing).
#[derive(Default)]
pub struct ServiceAllocations {
    read: std::sync::Mutex<HashMap<String, (i64, Allocated)>>,
}

impl ServiceAllocations {
    /// The cluster IPs and node ports the Services under `prefix` hold now.
    fn taken(&self, store: &crate::store::Store, prefix: &str) -> (HashSet<String>, HashSet<i64>) {
        let (_, stored) = store.list(prefix);
        let mut read = self
            .read
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Forget deleted Services once they are a good part of what is kept.
        if read.len() > 2 * stored.len() + 64 {
            let live: HashSet<&str> = stored.iter().map(|(k, _)| k.as_str()).collect();
            read.retain(|k, _| live.contains(k.as_str()));
        }
        let (mut ips, mut ports) = (HashSet::new(), HashSet::new());
        for (key, service) in &stored {
            let allocated = match read.get(key) {
                Some((rev, allocated)) if *rev == service.rev => allocated,
                _ => {
                    let allocated = Allocated::of(&service.raw);
                    read.insert(key.clone(), (service.rev, allocated));
                    &read[key].1
                }
            };
            ips.extend(allocated.cluster_ip.iter().cloned());
            ports.extend(allocated.node_ports.iter().copied());
        }
        (ips, ports)
    }
}

/// Allocates what kube's Service REST storage allocates on create: a cluster IP (`clusterIP`
/// and `clusterIPs`) for a Service that is not headless or ExternalName, and node ports for
/// NodePort and LoadBalancer Services, each free among the stored Services.
///
/// Errors: the range is full (kube-apiserver's own message).
pub fn allocate_service(
    res: &Resource,
    obj: &mut Value,
    store: &crate::store::Store,
    allocations: &ServiceAllocations,
) -> Result<(), String> {
    if res.custom || !res.group.is_empty() || res.kind != "Service" {
        return Ok(());
    }
    let Some(s) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    let ty = at(s, "type").as_str().unwrap_or("").to_string();
    let wants_ip = ty != "ExternalName" && is_empty(s, "clusterIP");
    let wants_ports = matches!(ty.as_str(), "NodePort" | "LoadBalancer")
        && at(s, "allocateLoadBalancerNodePorts") != false
        && s.get("ports")
            .and_then(Value::as_array)
            .is_some_and(|ps| ps.iter().any(|p| p["nodePort"].as_i64().unwrap_or(0) == 0));
    if !wants_ip && !wants_ports {
        return Ok(());
    }
    let (ips, mut ports) = allocations.taken(store, &res.prefix());
    if wants_ip {
        // The network and broadcast addresses are never handed out.
        let ip = pick(CLUSTER_IP_SIZE, &ips, |i| {
            (i != 0 && i != CLUSTER_IP_SIZE - 1)
                .then(|| std::net::Ipv4Addr::from(CLUSTER_IP_BASE + i).to_string())
        })
        .ok_or("failed to allocate a serviceIP: range is full")?;
        s.insert("clusterIP".into(), json!(ip));
        s.insert("clusterIPs".into(), json!([ip]));
    }
    if wants_ports {
        let size = (NODE_PORTS.end() - NODE_PORTS.start() + 1) as u32;
        for p in each(s, "ports") {
            if at(p, "nodePort").as_i64().unwrap_or(0) != 0 {
                continue;
            }
            let port = pick(size, &ports, |i| Some(NODE_PORTS.start() + i64::from(i)))
                .ok_or("failed to allocate a nodePort: range is full")?;
            ports.insert(port);
            p.insert("nodePort".into(), json!(port));
        }
    }
    Ok(())
}

/// On a Service update, what the new object leaves unset of what was allocated (cluster IPs,
/// IP families, node ports) is kept from `old`, as kube's service strategy does, so a `PUT` of
/// the original manifest is not a change of an immutable field.
pub fn keep_allocated(res: &Resource, new: &mut Value, old: &Value) {
    if res.custom || !res.group.is_empty() || res.kind != "Service" {
        return;
    }
    let (Some(s), Some(o)) = (
        new.get_mut("spec").and_then(Value::as_object_mut),
        old["spec"].as_object(),
    ) else {
        return;
    };
    if at(s, "type") != at(o, "type") {
        return;
    }
    for key in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
        if is_empty(s, key)
            && let Some(v) = o.get(key)
        {
            s.insert(key.into(), v.clone());
        }
    }
    let old_ports = o
        .get("ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for p in each(s, "ports") {
        if at(p, "nodePort").as_i64().unwrap_or(0) == 0
            && let Some(n) = old_ports
                .iter()
                .find(|op| op["port"] == *at(p, "port") && op["protocol"] == *at(p, "protocol"))
                .and_then(|op| op.get("nodePort"))
        {
            p.insert("nodePort".into(), n.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    fn defaulted(group: &str, plural: &str, mut obj: Value, create: bool) -> Value {
        let res = Registry::default()
            .lookup(
                group,
                if plural == "horizontalpodautoscalers" {
                    "v2"
                } else {
                    "v1"
                },
                plural,
            )
            .expect("built in");
        apply(&res, &mut obj, create);
        obj
    }

    #[test]
    fn malformed_objects_of_every_kind_do_not_panic() {
        let shapes = [
            json!({}),
            json!({"metadata": 5, "spec": "x", "status": []}),
            json!({"spec": {"template": 1, "ports": "x", "strategy": "x", "updateStrategy": {"type": 3},
                "jobTemplate": {"spec": 2}, "containers": [1, {"ports": [2], "env": [{"valueFrom": 1}]}],
                "volumes": [{"name": "v", "projected": {"sources": [3]}}], "behavior": {"scaleUp": 1}}}),
            json!({"spec": {"template": {"spec": {"containers": "x", "volumes": {}}}}, "subsets": [{"ports": 1}], "webhooks": [2]}),
        ];
        for r in Registry::default().all().iter().filter(|r| !r.custom) {
            for shape in &shapes {
                for create in [true, false] {
                    let mut o = shape.clone();
                    apply(r, &mut o, create);
                }
            }
        }
    }

    #[test]
    fn image_pull_policy_follows_the_tag() {
        assert_eq!(pull_policy("nginx"), "Always");
        assert_eq!(pull_policy("nginx:latest"), "Always");
        assert_eq!(pull_policy("nginx:1.27"), "IfNotPresent");
        assert_eq!(pull_policy("localhost:5000/app"), "Always");
        assert_eq!(pull_policy("localhost:5000/app:v1"), "IfNotPresent");
        assert_eq!(pull_policy("nginx@sha256:abc"), "IfNotPresent");
    }

    #[test]
    fn a_deployment_gets_kubes_defaults_and_keeps_what_it_sets() {
        let d = defaulted(
            "apps",
            "deployments",
            json!({"metadata": {"name": "web"}, "spec": {"replicas": 3, "selector": {}, "template": {"spec": {
                "containers": [{"name": "c", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}]}}}}),
            true,
        );
        let s = &d["spec"];
        assert_eq!(s["replicas"], 3);
        assert_eq!(
            s["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        );
        assert_eq!(s["revisionHistoryLimit"], 10);
        assert_eq!(s["progressDeadlineSeconds"], 600);
        let p = &s["template"]["spec"];
        assert_eq!(p["restartPolicy"], "Always");
        assert_eq!(p["dnsPolicy"], "ClusterFirst");
        assert_eq!(p["schedulerName"], "default-scheduler");
        assert_eq!(p["terminationGracePeriodSeconds"], 30);
        assert_eq!(p["securityContext"], json!({}));
        assert!(p.get("enableServiceLinks").is_none(), "Pod-only default");
        let c = &p["containers"][0];
        assert_eq!(c["imagePullPolicy"], "IfNotPresent");
        assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
        assert_eq!(c["terminationMessagePolicy"], "File");
        assert_eq!(c["ports"][0]["protocol"], "TCP");
        // Go serialises a struct-valued field even when it is empty.
        assert_eq!(c["resources"], json!({}));
        assert_eq!(d["status"], json!({}));
        let again = defaulted("apps", "deployments", d.clone(), false);
        assert_eq!(again, d, "defaulting is idempotent");
    }

    #[test]
    fn a_recreate_deployment_gets_no_rolling_update() {
        let d = defaulted(
            "apps",
            "deployments",
            json!({"spec": {"strategy": {"type": "Recreate"}}}),
            false,
        );
        assert_eq!(d["spec"]["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn a_service_gets_protocol_target_port_and_ip_families() {
        let s = defaulted(
            "",
            "services",
            json!({"spec": {"selector": {"app": "a"}, "ports": [{"port": 80}, {"port": 53, "protocol": "UDP", "targetPort": "dns"}]}}),
            true,
        );
        let spec = &s["spec"];
        assert_eq!(spec["type"], "ClusterIP");
        assert_eq!(spec["sessionAffinity"], "None");
        assert_eq!(spec["internalTrafficPolicy"], "Cluster");
        assert_eq!(spec["ipFamilyPolicy"], "SingleStack");
        assert_eq!(spec["ipFamilies"], json!(["IPv4"]));
        assert_eq!(
            spec["ports"][0],
            json!({"port": 80, "protocol": "TCP", "targetPort": 80})
        );
        assert_eq!(spec["ports"][1]["targetPort"], "dns");
        assert!(spec.get("externalTrafficPolicy").is_none());
        assert_eq!(s["status"], json!({"loadBalancer": {}}));
    }

    #[test]
    fn a_new_pod_is_pending_with_priority_and_default_tolerations() {
        let p = defaulted(
            "",
            "pods",
            json!({"spec": {"containers": [{"name": "c", "image": "busybox",
                "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}}),
            true,
        );
        assert_eq!(p["status"]["phase"], "Pending");
        assert_eq!(p["status"]["qosClass"], "Guaranteed");
        assert_eq!(p["spec"]["priority"], 0);
        assert_eq!(p["spec"]["serviceAccountName"], "default");
        assert_eq!(p["spec"]["enableServiceLinks"], true);
        assert_eq!(p["spec"]["tolerations"].as_array().map(Vec::len), Some(2));
        assert_eq!(p["spec"]["containers"][0]["imagePullPolicy"], "Always");
        assert_eq!(
            p["spec"]["containers"][0]["resources"]["requests"],
            json!({"cpu": "1", "memory": "1Gi"})
        );
    }

    #[test]
    fn a_job_gets_its_selector_and_labels_on_create() {
        let j = defaulted(
            "batch",
            "jobs",
            json!({"metadata": {"name": "j", "uid": "u1"}, "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}], "restartPolicy": "Never"}}}}),
            true,
        );
        let s = &j["spec"];
        assert_eq!(s["completions"], 1);
        assert_eq!(s["parallelism"], 1);
        assert_eq!(s["backoffLimit"], 6);
        assert_eq!(s["completionMode"], "NonIndexed");
        assert_eq!(s["podReplacementPolicy"], "TerminatingOrFailed");
        assert_eq!(
            s["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"],
            "u1"
        );
        assert_eq!(s["template"]["metadata"]["labels"]["job-name"], "j");
        assert_eq!(j["metadata"]["labels"]["job-name"], "j");
        assert_eq!(s["template"]["spec"]["restartPolicy"], "Never");
    }

    #[test]
    fn services_get_free_addresses_and_a_changed_service_is_read_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = crate::store::Store::open(&dir.path().join("db.sqlite")).expect("open");
        let res = Registry::default()
            .lookup("", "v1", "services")
            .expect("built in");
        let allocations = ServiceAllocations::default();
        let mut seen_ips = HashSet::new();
        let mut seen_ports = HashSet::new();
        for i in 0..50 {
            let mut obj = json!({"metadata": {"name": format!("s{i}"), "namespace": "default"},
                "spec": {"type": "NodePort", "ports": [{"port": 80}, {"port": 443}]}});
            apply(&res, &mut obj, true);
            allocate_service(&res, &mut obj, &store, &allocations).expect("allocated");
            let ip = obj["spec"]["clusterIP"]
                .as_str()
                .expect("an IP")
                .to_string();
            assert!(seen_ips.insert(ip.clone()), "{ip} handed out twice");
            for p in obj["spec"]["ports"].as_array().expect("ports") {
                let port = p["nodePort"].as_i64().expect("a node port");
                assert!(seen_ports.insert(port), "node port {port} handed out twice");
            }
            let key = format!("{}default/s{i}", res.prefix());
            store.put(&key, obj, true, None).expect("stored");
        }
        // A Service changed to hold another IP: the old one is free, the new one taken.
        let key = format!("{}default/s0", res.prefix());
        let mut changed = store.get(&key).expect("stored").obj();
        let freed = changed["spec"]["clusterIP"]
            .as_str()
            .expect("ip")
            .to_string();
        changed["spec"]["clusterIP"] = json!("10.96.200.200");
        store.put(&key, changed, false, None).expect("updated");
        let (ips, _) = allocations.taken(&store, &res.prefix());
        assert!(ips.contains("10.96.200.200"));
        assert!(!ips.contains(&freed));
        assert_eq!(ips.len(), 50);
    }
}
