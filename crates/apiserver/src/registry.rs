//! The table of served resource kinds: built-in kinds plus those of established CRDs.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde_json::{Value, json};

use crate::status::Cause;

/// The verbs every resource serves (discovery lists them; RBAC grants them all at once).
pub const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// Why a CRD cannot be served, in the words kube-apiserver uses for the same fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CrdError {
    /// A name the CRD must carry is missing.
    #[error("{0}: Required value")]
    Required(&'static str),
    /// No version of the CRD is served.
    #[error("spec.versions: no served version")]
    NoServedVersion,
    /// The CRD breaks a validation rule (stored before the rule was enforced).
    #[error("{field}: {message}")]
    Invalid {
        /// The offending field.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The CRD's names collide with a built-in resource.
    #[error("{plural}.{group} is a built-in resource")]
    BuiltIn {
        /// Plural of the colliding resource.
        plural: String,
        /// Its API group.
        group: String,
    },
}

/// The storage root of custom resources' objects (no built-in group is named `crd`).
pub const CUSTOM_ROOT: &str = "/registry/crd/";

/// One served resource in one version.
#[derive(Debug, Clone)]
pub struct Resource {
    /// API group ("" for core).
    pub group: String,
    /// Version, e.g. `v1`.
    pub version: String,
    /// Plural resource name, e.g. `deployments`.
    pub plural: String,
    /// Singular name, e.g. `deployment`.
    pub singular: String,
    /// Kind, e.g. `Deployment`.
    pub kind: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Short names for kubectl.
    pub short_names: Vec<String>,
    /// Categories (e.g. `all`).
    pub categories: Vec<String>,
    /// Has a `status` subresource.
    pub status: bool,
    /// `scale` subresource: (specReplicasPath, statusReplicasPath, labelSelectorPath).
    pub scale: Option<(String, String, Option<String>)>,
    /// Structural schema of a CRD version.
    pub schema: Option<Arc<Value>>,
    /// additionalPrinterColumns of a CRD version.
    pub printer_columns: Vec<Value>,
    /// Defined by a CRD.
    pub custom: bool,
    /// Uses strategic merge patch (built-in kinds only).
    pub strategic: bool,
}

impl Resource {
    /// `group/version`, or `version` for core.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The storage key prefix shared by all versions of this resource.
    pub fn prefix(&self) -> String {
        // Custom resources live under their own root: whatever group and plural a CRD names,
        // its objects can never share keys with a built-in kind (or be deleted with the CRD).
        if self.custom {
            return format!("{CUSTOM_ROOT}{}/{}/", self.group, self.plural);
        }
        // events.k8s.io Events are stored as core Events (see `convert`).
        let g = if self.group.is_empty() || self.is_events_api() {
            "core"
        } else {
            &self.group
        };
        format!("/registry/{g}/{}/", self.plural)
    }

    /// Whether `sub` (empty: the object itself) is served for this kind: `status` and `scale`
    /// where the kind defines them, `token` for ServiceAccounts (TokenRequest), the
    /// [`crate::pod_subresources`] for Pods.
    pub fn has_subresource(&self, sub: &str) -> bool {
        match sub {
            "" => true,
            "status" => self.status,
            "scale" => self.scale.is_some(),
            "token" => !self.custom && self.group.is_empty() && self.plural == "serviceaccounts",
            s if crate::pod_subresources::SUBRESOURCES.contains(&s) => {
                !self.custom && self.group.is_empty() && self.plural == "pods"
            }
            _ => false,
        }
    }

    /// `events.k8s.io` Events, served by conversion from core Events.
    pub fn is_events_api(&self) -> bool {
        self.group == "events.k8s.io" && self.plural == "events" && !self.custom
    }

    /// The storage key of an object.
    pub fn key(&self, namespace: &str, name: &str) -> String {
        format!("{}{namespace}/{name}", self.prefix())
    }

    /// The verbs served.
    pub fn verbs(&self) -> Vec<&'static str> {
        VERBS.to_vec()
    }
}

/// (group, version, kind, plural, namespaced, shortNames, categories, status subresource)
type Row = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    bool,
    &'static [&'static str],
    &'static [&'static str],
    bool,
);

const ALL: &[&str] = &["all"];
const NONE: &[&str] = &[];

const BUILTIN: &[Row] = &[
    (
        "",
        "v1",
        "Namespace",
        "namespaces",
        false,
        &["ns"],
        NONE,
        true,
    ),
    (
        "",
        "v1",
        "ServiceAccount",
        "serviceaccounts",
        true,
        &["sa"],
        NONE,
        false,
    ),
    ("", "v1", "Secret", "secrets", true, NONE, NONE, false),
    (
        "",
        "v1",
        "ConfigMap",
        "configmaps",
        true,
        &["cm"],
        NONE,
        false,
    ),
    ("", "v1", "Service", "services", true, &["svc"], ALL, true),
    (
        "",
        "v1",
        "Endpoints",
        "endpoints",
        true,
        &["ep"],
        NONE,
        false,
    ),
    ("", "v1", "Pod", "pods", true, &["po"], ALL, true),
    ("", "v1", "Event", "events", true, &["ev"], NONE, false),
    (
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        true,
        &["pvc"],
        NONE,
        true,
    ),
    (
        "",
        "v1",
        "PersistentVolume",
        "persistentvolumes",
        false,
        &["pv"],
        NONE,
        true,
    ),
    ("", "v1", "Node", "nodes", false, &["no"], NONE, true),
    (
        "",
        "v1",
        "ResourceQuota",
        "resourcequotas",
        true,
        &["quota"],
        NONE,
        true,
    ),
    (
        "",
        "v1",
        "LimitRange",
        "limitranges",
        true,
        &["limits"],
        NONE,
        false,
    ),
    (
        "",
        "v1",
        "PodTemplate",
        "podtemplates",
        true,
        NONE,
        NONE,
        false,
    ),
    (
        "apps",
        "v1",
        "ControllerRevision",
        "controllerrevisions",
        true,
        NONE,
        NONE,
        false,
    ),
    (
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        "endpointslices",
        true,
        NONE,
        NONE,
        false,
    ),
    (
        "networking.k8s.io",
        "v1",
        "IngressClass",
        "ingressclasses",
        false,
        NONE,
        NONE,
        false,
    ),
    (
        "node.k8s.io",
        "v1",
        "RuntimeClass",
        "runtimeclasses",
        false,
        NONE,
        NONE,
        false,
    ),
    (
        "events.k8s.io",
        "v1",
        "Event",
        "events",
        true,
        &["ev"],
        NONE,
        false,
    ),
    (
        "apps",
        "v1",
        "Deployment",
        "deployments",
        true,
        &["deploy"],
        ALL,
        true,
    ),
    (
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        true,
        &["rs"],
        ALL,
        true,
    ),
    (
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        true,
        &["sts"],
        ALL,
        true,
    ),
    (
        "apps",
        "v1",
        "DaemonSet",
        "daemonsets",
        true,
        &["ds"],
        ALL,
        true,
    ),
    ("batch", "v1", "Job", "jobs", true, NONE, ALL, true),
    (
        "batch",
        "v1",
        "CronJob",
        "cronjobs",
        true,
        &["cj"],
        ALL,
        true,
    ),
    (
        "networking.k8s.io",
        "v1",
        "Ingress",
        "ingresses",
        true,
        &["ing"],
        NONE,
        true,
    ),
    (
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        "networkpolicies",
        true,
        &["netpol"],
        NONE,
        false,
    ),
    (
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        true,
        &["hpa"],
        ALL,
        true,
    ),
    (
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        true,
        &["pdb"],
        NONE,
        true,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "Role",
        "roles",
        true,
        NONE,
        NONE,
        false,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        false,
        NONE,
        NONE,
        false,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        true,
        NONE,
        NONE,
        false,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        false,
        NONE,
        NONE,
        false,
    ),
    (
        "authorization.k8s.io",
        "v1",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        false,
        NONE,
        NONE,
        false,
    ),
    (
        "authorization.k8s.io",
        "v1",
        "SubjectAccessReview",
        "subjectaccessreviews",
        false,
        NONE,
        NONE,
        false,
    ),
    (
        "authorization.k8s.io",
        "v1",
        "LocalSubjectAccessReview",
        "localsubjectaccessreviews",
        true,
        NONE,
        NONE,
        false,
    ),
    (
        "authorization.k8s.io",
        "v1",
        "SelfSubjectRulesReview",
        "selfsubjectrulesreviews",
        false,
        NONE,
        NONE,
        false,
    ),
    (
        "authentication.k8s.io",
        "v1",
        "TokenReview",
        "tokenreviews",
        false,
        NONE,
        NONE,
        false,
    ),
    (
        "authentication.k8s.io",
        "v1",
        "SelfSubjectReview",
        "selfsubjectreviews",
        false,
        NONE,
        NONE,
        false,
    ),
    (
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        false,
        &["crd", "crds"],
        NONE,
        true,
    ),
    (
        "coordination.k8s.io",
        "v1",
        "Lease",
        "leases",
        true,
        NONE,
        NONE,
        false,
    ),
    (
        "scheduling.k8s.io",
        "v1",
        "PriorityClass",
        "priorityclasses",
        false,
        &["pc"],
        NONE,
        false,
    ),
    (
        "storage.k8s.io",
        "v1",
        "StorageClass",
        "storageclasses",
        false,
        &["sc"],
        NONE,
        false,
    ),
    (
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        false,
        NONE,
        NONE,
        false,
    ),
    (
        "admissionregistration.k8s.io",
        "v1",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        false,
        NONE,
        NONE,
        false,
    ),
    (
        "apiregistration.k8s.io",
        "v1",
        "APIService",
        "apiservices",
        false,
        NONE,
        NONE,
        true,
    ),
];

fn builtin() -> Vec<Arc<Resource>> {
    BUILTIN
        .iter()
        .map(|(g, v, k, p, ns, short, cats, status)| {
            let scale = matches!(*k, "Deployment" | "ReplicaSet" | "StatefulSet").then(|| {
                (
                    ".spec.replicas".to_string(),
                    ".status.replicas".to_string(),
                    Some(".status.selector".to_string()),
                )
            });
            Arc::new(Resource {
                group: g.to_string(),
                version: v.to_string(),
                plural: p.to_string(),
                singular: k.to_lowercase(),
                kind: k.to_string(),
                namespaced: *ns,
                short_names: short.iter().map(|s| s.to_string()).collect(),
                categories: cats.iter().map(|s| s.to_string()).collect(),
                status: *status,
                scale,
                schema: None,
                printer_columns: Vec::new(),
                custom: false,
                strategic: true,
            })
        })
        .collect()
}

/// Everything served, looked up by (group, version, plural).
pub struct Registry {
    builtin: Vec<Arc<Resource>>,
    custom: RwLock<BTreeMap<String, Vec<Arc<Resource>>>>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            builtin: builtin(),
            custom: RwLock::new(BTreeMap::new()),
        }
    }
}

impl Registry {
    /// All served resources (built-in first, then CRDs by name).
    pub fn all(&self) -> Vec<Arc<Resource>> {
        let mut v = self.builtin.clone();
        let custom = self.custom.read().unwrap_or_else(|e| e.into_inner());
        for rs in custom.values() {
            v.extend(rs.iter().cloned());
        }
        v
    }

    /// The resource `plural` in `group/version`.
    pub fn lookup(&self, group: &str, version: &str, plural: &str) -> Option<Arc<Resource>> {
        self.all()
            .into_iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
    }

    /// The resource with this kind in `group/version` (for apiVersion/kind in bodies).
    pub fn by_kind(&self, group: &str, version: &str, kind: &str) -> Option<Arc<Resource>> {
        self.all()
            .into_iter()
            .find(|r| r.group == group && r.version == version && r.kind == kind)
    }

    /// Served versions of `group`, preferred first.
    pub fn versions(&self, group: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for r in self.all() {
            if r.group == group && !out.contains(&r.version) {
                out.push(r.version.clone());
            }
        }
        out
    }

    /// Groups served (without core), in first-seen order.
    pub fn groups(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for r in self.all() {
            if !r.group.is_empty() && !out.contains(&r.group) {
                out.push(r.group.clone());
            }
        }
        out
    }

    /// Serves (or replaces) the versions of the CRD `crd`. Returns an error message when the CRD
    /// cannot be served (its names collide with a built-in kind).
    pub fn install_crd(&self, crd: &Value) -> Result<(), CrdError> {
        let name = crd["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let resources = crd_resources(crd)?;
        // A CRD stored before these rules were enforced (e.g. group `core`) is not served.
        if let Some(c) = validate_crd(crd, Some(crd)).first() {
            return Err(CrdError::Invalid {
                field: c.field.clone(),
                message: c.message.clone(),
            });
        }
        if let Some(r) = resources.first()
            && self
                .builtin
                .iter()
                .any(|b| b.group == r.group && b.plural == r.plural)
        {
            return Err(CrdError::BuiltIn {
                plural: r.plural.clone(),
                group: r.group.clone(),
            });
        }
        let mut custom = self.custom.write().unwrap_or_else(|e| e.into_inner());
        custom.insert(name, resources);
        Ok(())
    }

    /// Stops serving the CRD `name`; returns its resources.
    pub fn remove_crd(&self, name: &str) -> Vec<Arc<Resource>> {
        let mut custom = self.custom.write().unwrap_or_else(|e| e.into_inner());
        custom.remove(name).unwrap_or_default()
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

const API_APPROVED: &str = "api-approved.kubernetes.io";

/// Groups that belong to the Kubernetes project: their CRDs need an API review annotation.
fn is_protected_group(group: &str) -> bool {
    group == "k8s.io"
        || group.ends_with(".k8s.io")
        || group == "kubernetes.io"
        || group.ends_with(".kubernetes.io")
}

#[derive(PartialEq)]
enum Approval {
    Missing,
    Bypassed,
    Approved,
    Invalid,
}

/// The state of a CRD's `api-approved.kubernetes.io` annotation, with kube-apiserver's reason.
fn approval(crd: &Value) -> (Approval, String) {
    let value = crd["metadata"]["annotations"][API_APPROVED]
        .as_str()
        .unwrap_or("");
    let is_url = value.split_once("://").is_some_and(|(scheme, rest)| {
        scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
            && !rest.split('/').next().unwrap_or("").is_empty()
    });
    if value.is_empty() {
        (
            Approval::Missing,
            format!(
                "protected groups must have approval annotation {API_APPROVED:?}, see https://github.com/kubernetes/enhancements/pull/1111"
            ),
        )
    } else if value.starts_with("unapproved") {
        (Approval::Bypassed, String::new())
    } else if is_url {
        (Approval::Approved, String::new())
    } else {
        (
            Approval::Invalid,
            format!(
                "protected groups must have approval annotation {API_APPROVED:?} with either a URL or a reason starting with \"unapproved\", see https://github.com/kubernetes/enhancements/pull/1111"
            ),
        )
    }
}

/// A DNS-1035 label (what CRD plural names must be).
fn is_dns1035_label(s: &str) -> bool {
    s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

const DNS1035_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

/// apiextensions-apiserver's rules on a CRD's identity (`old` on update): the group is a
/// domain with a dot, Kubernetes-owned groups carry the API approval annotation, the plural
/// is a DNS-1035 label, the name is `<plural>.<group>`, and group and plural never change.
pub fn validate_crd(crd: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut out = Vec::new();
    let spec = &crd["spec"];
    let group = spec["group"].as_str().unwrap_or("");
    let plural = spec["names"]["plural"].as_str().unwrap_or("");
    if group.is_empty() {
        out.push(Cause::required("spec.group"));
    } else if !crate::meta::is_subdomain(group) {
        out.push(Cause::invalid(
            "spec.group",
            &json!(group),
            crate::meta::SUBDOMAIN_MSG,
        ));
    } else if !group.contains('.') {
        out.push(Cause::invalid(
            "spec.group",
            &json!(group),
            "should be a domain with at least one dot",
        ));
    }
    if !plural.is_empty() && !is_dns1035_label(plural) {
        out.push(Cause::invalid(
            "spec.names.plural",
            &json!(plural),
            DNS1035_MSG,
        ));
    }
    let name = crd["metadata"]["name"].as_str().unwrap_or("");
    if name != format!("{plural}.{group}") {
        out.push(Cause::invalid(
            "metadata.name",
            &json!(name),
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    if let Some(old) = old {
        for (field, now, was) in [
            ("spec.group", &spec["group"], &old["spec"]["group"]),
            (
                "spec.names.plural",
                &spec["names"]["plural"],
                &old["spec"]["names"]["plural"],
            ),
        ] {
            if now != was {
                out.push(Cause::invalid(field, now, "field is immutable"));
            }
        }
    }
    if is_protected_group(group) {
        let (state, reason) = approval(crd);
        // As kube-apiserver: an update that leaves the approval state alone is never refused.
        let unchanged = old.is_some_and(|o| approval(o).0 == state);
        let field = format!("metadata.annotations[{API_APPROVED}]");
        match state {
            _ if unchanged => {}
            Approval::Approved | Approval::Bypassed => {}
            Approval::Missing => out.push(Cause {
                reason: "FieldValueRequired",
                message: format!("Required value: {reason}"),
                field,
            }),
            Approval::Invalid => out.push(Cause::invalid(
                field,
                &crd["metadata"]["annotations"][API_APPROVED],
                &reason,
            )),
        }
    }
    // As kube-apiserver: every CEL rule must compile (and name declared fields only).
    out.extend(ferroflux_schema::crd_rule_errors(crd));
    out
}

/// The served resources a CRD object defines.
pub fn crd_resources(crd: &Value) -> Result<Vec<Arc<Resource>>, CrdError> {
    let spec = &crd["spec"];
    let group = spec["group"]
        .as_str()
        .ok_or(CrdError::Required("spec.group"))?
        .to_string();
    let names = &spec["names"];
    let plural = names["plural"]
        .as_str()
        .ok_or(CrdError::Required("spec.names.plural"))?
        .to_string();
    let kind = names["kind"]
        .as_str()
        .ok_or(CrdError::Required("spec.names.kind"))?
        .to_string();
    let singular = names["singular"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| kind.to_lowercase());
    let namespaced = spec["scope"].as_str() != Some("Cluster");
    let mut out = Vec::new();
    for v in spec["versions"].as_array().into_iter().flatten() {
        if v["served"].as_bool() == Some(false) {
            continue;
        }
        let Some(version) = v["name"].as_str() else {
            continue;
        };
        let sub = &v["subresources"];
        let scale = sub.get("scale").map(|s| {
            (
                s["specReplicasPath"]
                    .as_str()
                    .unwrap_or(".spec.replicas")
                    .to_string(),
                s["statusReplicasPath"]
                    .as_str()
                    .unwrap_or(".status.replicas")
                    .to_string(),
                s["labelSelectorPath"].as_str().map(str::to_string),
            )
        });
        out.push(Arc::new(Resource {
            group: group.clone(),
            version: version.to_string(),
            plural: plural.clone(),
            singular: singular.clone(),
            kind: kind.clone(),
            namespaced,
            short_names: strings(&names["shortNames"]),
            categories: strings(&names["categories"]),
            status: sub.get("status").is_some(),
            scale,
            schema: v["schema"]
                .get("openAPIV3Schema")
                .map(|s| Arc::new(s.clone())),
            printer_columns: v["additionalPrinterColumns"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
            custom: true,
            strategic: false,
        }));
    }
    if out.is_empty() {
        return Err(CrdError::NoServedVersion);
    }
    Ok(out)
}

/// The status a served CRD gets: Established and NamesAccepted conditions and accepted names.
pub fn crd_status(crd: &Value, now: &str) -> Value {
    let names = crd["spec"]["names"].clone();
    let stored: Vec<Value> = crd["spec"]["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["storage"].as_bool() == Some(true))
        .filter_map(|v| v.get("name").cloned())
        .collect();
    let cond = |t: &str, reason: &str, msg: &str| json!({"type": t, "status": "True", "lastTransitionTime": now, "reason": reason, "message": msg});
    json!({
        "acceptedNames": names,
        "storedVersions": stored,
        "conditions": [
            cond("NamesAccepted", "NoConflicts", "no conflicts found"),
            cond("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ]
    })
}
