//! Identity of a Kubernetes object, as Flux writes it in inventories.

use std::fmt;

use serde_json::Value;

/// Why an object cannot be identified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectError {
    /// apiVersion, kind or metadata.name is missing or not a string.
    #[error("object {index} has no {field}; every object needs apiVersion, kind and metadata.name")]
    Missing {
        /// Position of the object in its stream.
        index: usize,
        /// The missing field.
        field: &'static str,
    },
    /// An inventory id that is not `<namespace>_<name>_<group>_<kind>`.
    #[error("inventory entry {id:?} is not of the form <namespace>_<name>_<group>_<kind>")]
    BadInventoryId {
        /// The id.
        id: String,
    },
}

/// Group, version, kind, namespace and name of an object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    /// API group, empty for the core group.
    pub group: String,
    /// API version without the group, e.g. `v1`.
    pub version: String,
    /// Kind.
    pub kind: String,
    /// Namespace, empty for cluster-scoped objects.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ObjectRef {
    /// The identity of the object at position `index` of a stream.
    pub fn of(object: &Value, index: usize) -> Result<Self, ObjectError> {
        let field = |value: &Value, field: &'static str| {
            value
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .ok_or(ObjectError::Missing { index, field })
        };
        let api_version = field(&object["apiVersion"], "apiVersion")?;
        let (group, version) = match api_version.rsplit_once('/') {
            Some((group, version)) => (group.to_string(), version.to_string()),
            None => (String::new(), api_version),
        };
        Ok(ObjectRef {
            group,
            version,
            kind: field(&object["kind"], "kind")?,
            namespace: object["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            name: field(&object["metadata"]["name"], "metadata.name")?,
        })
    }

    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The inventory id: `<namespace>_<name>_<group>_<kind>`. A `:` in a name (RBAC objects
    /// such as `system:controller`) is written `__`, as Flux does, so ids stay splittable.
    pub fn inventory_id(&self) -> String {
        format!(
            "{}_{}_{}_{}",
            self.namespace,
            self.name.replace(':', "__"),
            self.group,
            self.kind
        )
    }

    /// Parses an inventory id and its version back into an identity.
    pub fn from_inventory(id: &str, version: &str) -> Result<Self, ObjectError> {
        let bad = || ObjectError::BadInventoryId { id: id.to_string() };
        let (rest, kind) = id.rsplit_once('_').ok_or_else(bad)?;
        let (rest, group) = rest.rsplit_once('_').ok_or_else(bad)?;
        let (namespace, name) = rest.split_once('_').ok_or_else(bad)?;
        if kind.is_empty() || name.is_empty() {
            return Err(bad());
        }
        let version = version.rsplit_once('/').map_or(version, |(_, v)| v);
        Ok(ObjectRef {
            group: group.to_string(),
            version: version.to_string(),
            kind: kind.to_string(),
            namespace: namespace.to_string(),
            name: name.replace("__", ":"),
        })
    }
}

impl fmt::Display for ObjectRef {
    /// Flux's change-set form: `Kind/namespace/name`, or `Kind/name` when cluster-scoped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{}/{}", self.kind, self.name)
        } else {
            write!(f, "{}/{}/{}", self.kind, self.namespace, self.name)
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn inventory_ids_round_trip() {
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "podinfo", "namespace": "team-a"}});
        let id = ObjectRef::of(&deployment, 0).expect("identifies");
        assert_eq!(id.inventory_id(), "team-a_podinfo_apps_Deployment");
        assert_eq!(id.to_string(), "Deployment/team-a/podinfo");
        assert_eq!(ObjectRef::from_inventory(&id.inventory_id(), "v1"), Ok(id));

        let namespace =
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}});
        let id = ObjectRef::of(&namespace, 0).expect("identifies");
        assert_eq!(id.inventory_id(), "_team-a__Namespace");
        assert_eq!(id.to_string(), "Namespace/team-a");
        assert_eq!(
            ObjectRef::from_inventory("_team-a__Namespace", "v1"),
            Ok(id)
        );
    }

    #[test]
    fn colons_in_names_are_escaped() {
        let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "system:tenant:reader"}});
        let id = ObjectRef::of(&role, 0).expect("identifies");
        assert_eq!(
            id.inventory_id(),
            "_system__tenant__reader_rbac.authorization.k8s.io_ClusterRole"
        );
        assert_eq!(
            ObjectRef::from_inventory(&id.inventory_id(), "rbac.authorization.k8s.io/v1"),
            Ok(id)
        );
    }

    #[test]
    fn incomplete_objects_and_bad_ids_are_errors() {
        let nameless = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}});
        assert_eq!(
            ObjectRef::of(&nameless, 3),
            Err(ObjectError::Missing {
                index: 3,
                field: "metadata.name"
            })
        );
        assert!(ObjectRef::of(&json!("text"), 0).is_err());
        assert!(ObjectRef::from_inventory("no-underscores", "v1").is_err());
        assert!(ObjectRef::from_inventory("ns__group_", "v1").is_err());
    }
}
