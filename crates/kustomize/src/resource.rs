//! Resources, their identities (group/version/kind + name + namespace) and the ordered
//! collection a build works on.

use std::collections::HashSet;
use std::fmt;

use crate::error::{Result, msg};
use crate::yaml::{Map, Value};

/// Group, version and kind. Empty fields in a selector match anything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Gvk {
    /// API group (`""` for the core group).
    pub group: String,
    /// API version.
    pub version: String,
    /// Kind.
    pub kind: String,
}

impl Gvk {
    /// Parses `apiVersion` (`group/version` or `version`) and a kind.
    pub fn from_api_version(api_version: &str, kind: &str) -> Self {
        let (group, version) = match api_version.rsplit_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (String::new(), api_version.to_string()),
        };
        Gvk {
            group,
            version,
            kind: kind.to_string(),
        }
    }

    /// Whether this (a concrete id) is selected by `sel` (empty fields are wildcards).
    pub fn is_selected_by(&self, sel: &Gvk) -> bool {
        (sel.group.is_empty() || sel.group == self.group)
            && (sel.version.is_empty() || sel.version == self.version)
            && (sel.kind.is_empty() || sel.kind == self.kind)
    }

    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Whether objects of this kind live outside namespaces (built-in kinds only; a kind
    /// is matched together with its API group, so a custom `Namespace` kind is namespaced).
    pub fn is_cluster_scoped(&self) -> bool {
        CLUSTER_SCOPED
            .iter()
            .any(|(g, kinds)| *g == self.group && kinds.contains(&self.kind.as_str()))
    }
}

const CLUSTER_SCOPED: &[(&str, &[&str])] = &[
    (
        "",
        &["Namespace", "Node", "PersistentVolume", "ComponentStatus"],
    ),
    (
        "rbac.authorization.k8s.io",
        &["ClusterRole", "ClusterRoleBinding"],
    ),
    ("apiextensions.k8s.io", &["CustomResourceDefinition"]),
    ("apiregistration.k8s.io", &["APIService"]),
    (
        "admissionregistration.k8s.io",
        &[
            "MutatingWebhookConfiguration",
            "ValidatingWebhookConfiguration",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding",
            "MutatingAdmissionPolicy",
            "MutatingAdmissionPolicyBinding",
        ],
    ),
    (
        "storage.k8s.io",
        &[
            "StorageClass",
            "CSIDriver",
            "CSINode",
            "VolumeAttachment",
            "VolumeAttributesClass",
        ],
    ),
    ("scheduling.k8s.io", &["PriorityClass"]),
    ("node.k8s.io", &["RuntimeClass"]),
    ("policy", &["PodSecurityPolicy"]),
    ("extensions", &["PodSecurityPolicy"]),
    (
        "certificates.k8s.io",
        &["CertificateSigningRequest", "ClusterTrustBundle"],
    ),
    (
        "networking.k8s.io",
        &["IngressClass", "IPAddress", "ServiceCIDR"],
    ),
    (
        "authentication.k8s.io",
        &["TokenReview", "SelfSubjectReview"],
    ),
    (
        "authorization.k8s.io",
        &[
            "SelfSubjectAccessReview",
            "SelfSubjectRulesReview",
            "SubjectAccessReview",
        ],
    ),
    (
        "flowcontrol.apiserver.k8s.io",
        &["FlowSchema", "PriorityLevelConfiguration"],
    ),
    ("resource.k8s.io", &["DeviceClass", "ResourceSlice"]),
    ("internal.apiserver.k8s.io", &["StorageVersion"]),
    ("storagemigration.k8s.io", &["StorageVersionMigration"]),
];

/// `s`, or `placeholder` when it is empty: how kustomize spells an unset part of an id
/// (`[noGrp]`, `~G`, ...) when it prints or sorts ids.
pub(crate) fn or_placeholder<'a>(s: &'a str, placeholder: &'a str) -> &'a str {
    if s.is_empty() { placeholder } else { s }
}

impl fmt::Display for Gvk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}.{}",
            or_placeholder(&self.kind, "[noKind]"),
            or_placeholder(&self.version, "[noVer]"),
            or_placeholder(&self.group, "[noGrp]")
        )
    }
}

/// A resource identity.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ResId {
    /// Group, version, kind.
    pub gvk: Gvk,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace` (empty when unset).
    pub namespace: String,
}

impl ResId {
    /// The namespace, with `default` for an unset one.
    pub fn effective_namespace(&self) -> &str {
        if self.namespace.is_empty() {
            "default"
        } else {
            &self.namespace
        }
    }

    /// Namespaces equal, treating unset as `default`; cluster-scoped ids ignore it.
    pub fn ns_equals(&self, other: &ResId) -> bool {
        self.effective_namespace() == other.effective_namespace()
    }

    /// Same gvk (exactly), name and effective namespace.
    pub fn equals(&self, other: &ResId) -> bool {
        self.gvk == other.gvk && self.name == other.name && self.ns_equals(other)
    }
}

impl fmt::Display for ResId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = if self.namespace.is_empty() {
            "[noNs]"
        } else {
            &self.namespace
        };
        let name = if self.name.is_empty() {
            "[noName]"
        } else {
            &self.name
        };
        write!(f, "{}/{}.{}", self.gvk, name, ns)
    }
}

/// Where a resource, generator or transformer was declared, relative to the build root.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Origin {
    /// File the resource was read from.
    pub path: Option<String>,
    /// File that configured the generator or transformer.
    pub configured_in: Option<String>,
    /// The configuring plugin: (apiVersion, kind, name, namespace).
    pub configured_by: Option<(String, String, String, String)>,
}

impl Origin {
    /// The YAML text upstream stores in the origin annotation, each line prefixed with
    /// `indent` (the first with `first` instead).
    pub fn render(&self, first: &str, indent: &str) -> String {
        let mut lines = Vec::new();
        if let Some(p) = &self.path {
            lines.push(format!("path: {p}"));
        }
        if let Some(c) = &self.configured_in {
            lines.push(format!("configuredIn: {c}"));
        }
        if let Some((av, kind, name, ns)) = &self.configured_by {
            lines.push("configuredBy:".to_string());
            lines.push(format!("  apiVersion: {av}"));
            lines.push(format!("  kind: {kind}"));
            if !name.is_empty() {
                lines.push(format!("  name: {name}"));
            }
            if !ns.is_empty() {
                lines.push(format!("  namespace: {ns}"));
            }
        }
        let mut out = String::new();
        for (i, l) in lines.iter().enumerate() {
            out.push_str(if i == 0 { first } else { indent });
            out.push_str(l);
            out.push('\n');
        }
        out
    }
}

/// Joins relative paths lexically, keeping leading `..` (Go's `filepath.Join`).
pub fn rel_join(a: &str, b: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in a.split('/').chain(b.split('/')) {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else {
                    parts.push("..");
                }
            }
            s => parts.push(s),
        }
    }
    if parts.is_empty() {
        ".".to_string()
    } else {
        parts.join("/")
    }
}

/// One resource plus the build bookkeeping upstream keeps in internal annotations.
#[derive(Clone, Debug, Default)]
pub struct Resource {
    /// The object.
    pub obj: Map,
    /// Earlier (kind, name, namespace) identities, oldest first.
    pub prev: Vec<(String, String, String)>,
    /// Name prefixes applied, innermost first.
    pub prefixes: Vec<String>,
    /// Name suffixes applied, innermost first.
    pub suffixes: Vec<String>,
    /// Generator behavior (`create`, `merge`, `replace`) for generated objects.
    pub behavior: Option<String>,
    /// Whether a content hash suffix is still to be appended to the name.
    pub needs_hash: bool,
    /// Names of vars that refer to this resource.
    pub ref_vars: Vec<String>,
    /// Where the resource came from (buildMetadata `originAnnotations`).
    pub origin: Option<Origin>,
    /// The transformers that ran over it (buildMetadata `transformerAnnotations`).
    pub transformations: Vec<Origin>,
}

impl Resource {
    /// Wraps an object.
    pub fn new(obj: Map) -> Self {
        Resource {
            obj,
            ..Default::default()
        }
    }

    fn meta_str(&self, key: &str) -> String {
        self.obj
            .get("metadata")
            .and_then(|m| m.get(key))
            .and_then(Value::scalar_text)
            .unwrap_or_default()
    }

    /// `kind`.
    pub fn kind(&self) -> String {
        self.obj
            .get("kind")
            .and_then(Value::scalar_text)
            .unwrap_or_default()
    }

    /// `apiVersion`.
    pub fn api_version(&self) -> String {
        self.obj
            .get("apiVersion")
            .and_then(Value::scalar_text)
            .unwrap_or_default()
    }

    /// `metadata.name`.
    pub fn name(&self) -> String {
        self.meta_str("name")
    }

    /// `metadata.namespace`.
    pub fn namespace(&self) -> String {
        self.meta_str("namespace")
    }

    /// Group/version/kind.
    pub fn gvk(&self) -> Gvk {
        Gvk::from_api_version(&self.api_version(), &self.kind())
    }

    /// The current identity.
    pub fn cur_id(&self) -> ResId {
        ResId {
            gvk: self.gvk(),
            name: self.name(),
            namespace: self.namespace(),
        }
    }

    /// Earlier identities, oldest first (not including the current one).
    pub fn prev_ids(&self) -> Vec<ResId> {
        let gvk = self.gvk();
        self.prev
            .iter()
            .map(|(k, n, ns)| ResId {
                gvk: Gvk {
                    kind: k.clone(),
                    ..gvk.clone()
                },
                name: n.clone(),
                namespace: ns.clone(),
            })
            .collect()
    }

    /// Whether some identity the resource has had (current or earlier) satisfies `f`.
    pub fn any_id(&self, f: impl Fn(&ResId) -> bool) -> bool {
        f(&self.cur_id()) || self.prev_ids().iter().any(f)
    }

    /// The first identity this resource had.
    pub fn org_id(&self) -> ResId {
        self.prev_ids()
            .into_iter()
            .next()
            .unwrap_or_else(|| self.cur_id())
    }

    /// Remembers the current identity before a rename.
    pub fn store_previous_id(&mut self) {
        let id = self.cur_id();
        let ns = id.effective_namespace().to_string();
        self.prev.push((id.gvk.kind, id.name, ns));
    }

    /// The metadata mapping, created on demand.
    pub fn metadata_mut(&mut self) -> &mut Map {
        self.obj.map_entry("metadata")
    }

    /// Sets `metadata.name`.
    pub fn set_name(&mut self, name: &str) {
        self.metadata_mut()
            .insert("name", Value::Str(name.to_string()));
    }

    /// Sets `metadata.namespace`.
    pub fn set_namespace(&mut self, ns: &str) {
        self.metadata_mut()
            .insert("namespace", Value::Str(ns.to_string()));
    }

    /// `metadata.labels` as pairs.
    pub fn labels(&self) -> Vec<(String, String)> {
        self.string_map(&["metadata", "labels"])
    }

    /// `metadata.annotations` as pairs.
    pub fn annotations(&self) -> Vec<(String, String)> {
        self.string_map(&["metadata", "annotations"])
    }

    fn string_map(&self, path: &[&str]) -> Vec<(String, String)> {
        let mut cur = self.obj.get(path[0]);
        for k in &path[1..] {
            cur = cur.and_then(|v| v.get(k));
        }
        cur.and_then(Value::as_map)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.scalar_text().unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether both resources carry the same trailing prefixes and suffixes
    /// (`allow_empty`: an empty list on either side matches anything).
    pub fn prefixes_suffixes_equal(&self, other: &Resource, allow_empty: bool) -> bool {
        // An empty list only matches an empty list here.
        let ends = |a: &[String], b: &[String]| {
            let n = a.len().min(b.len());
            if n == 0 {
                return a.len() == b.len();
            }
            a[a.len() - n..] == b[b.len() - n..]
        };
        let p_ok = (allow_empty && (self.prefixes.is_empty() || other.prefixes.is_empty()))
            || ends(&self.prefixes, &other.prefixes);
        let s_ok = (allow_empty && (self.suffixes.is_empty() || other.suffixes.is_empty()))
            || ends(&self.suffixes, &other.suffixes);
        p_ok && s_ok
    }

    /// The whole object as a value.
    pub fn to_value(&self) -> Value {
        Value::Map(self.obj.clone())
    }
}

/// An ordered set of resources with unique current ids.
#[derive(Clone, Debug, Default)]
pub struct ResMap {
    /// The resources, in order.
    pub list: Vec<Resource>,
}

impl ResMap {
    /// Appends, refusing a resource whose current id is already present.
    pub fn append(&mut self, r: Resource) -> Result<()> {
        let id = r.cur_id();
        if self.list.iter().any(|x| x.cur_id().equals(&id)) {
            return Err(msg(format!(
                "may not add resource with an already registered id: {id}"
            )));
        }
        self.list.push(r);
        Ok(())
    }

    /// The identity key used for duplicate checks: (gvk, name, effective namespace).
    pub fn id_key(r: &Resource) -> (Gvk, String, String) {
        let id = r.cur_id();
        let ns = id.effective_namespace().to_string();
        (id.gvk, id.name, ns)
    }

    /// The keys of every resource, for [`ResMap::append_seen`].
    pub fn id_keys(&self) -> HashSet<(Gvk, String, String)> {
        self.list.iter().map(Self::id_key).collect()
    }

    /// [`ResMap::append`] with a caller-kept set of the keys already present, so that a run
    /// of appends stays linear. `seen` must hold exactly the keys of `self.list`.
    pub fn append_seen(
        &mut self,
        r: Resource,
        seen: &mut HashSet<(Gvk, String, String)>,
    ) -> Result<()> {
        if !seen.insert(Self::id_key(&r)) {
            return Err(msg(format!(
                "may not add resource with an already registered id: {}",
                r.cur_id()
            )));
        }
        self.list.push(r);
        Ok(())
    }

    /// Indexes of resources with some identity, current or earlier, that satisfies `f`.
    pub fn positions_by_any_id(&self, f: impl Fn(&ResId) -> bool) -> Vec<usize> {
        self.list
            .iter()
            .enumerate()
            .filter(|(_, r)| r.any_id(&f))
            .map(|(i, _)| i)
            .collect()
    }

    /// Indexes of resources whose current or any previous id matches name/gvk selection.
    pub fn find_by_cur_id(&self, id: &ResId) -> Vec<usize> {
        self.list
            .iter()
            .enumerate()
            .filter(|(_, r)| r.cur_id().equals(id))
            .map(|(i, _)| i)
            .collect()
    }
}

#[cfg(test)]
impl ResMap {
    /// The mappings of a YAML stream, for unit tests.
    pub(crate) fn from_yaml_for_test(src: &str) -> Self {
        let mut m = ResMap::default();
        for d in crate::yaml::parse_documents(src).expect("valid") {
            if let Value::Map(obj) = d {
                m.append(Resource::new(obj)).expect("unique");
            }
        }
        m
    }
}
