//! Conversion between the served versions of a kind. Every served version shares one schema
//! (older versions' fields are kept in the storage types), so conversion rewrites `apiVersion`
//! after checking that both versions are served.

use serde_json::Value;

use crate::crds;

/// Why an object could not be converted.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ConvertError {
    /// The object has no `apiVersion` or `kind` string.
    #[error("the object has no apiVersion or kind; both are required")]
    MissingTypeMeta,
    /// ferroflux does not serve this group and kind.
    #[error("{kind}.{group} is not a kind ferroflux serves")]
    UnknownKind {
        /// API group.
        group: String,
        /// Kind.
        kind: String,
    },
    /// The version is not served for this kind.
    #[error("{kind} is not served at {group}/{version}; served versions: {served}")]
    UnservedVersion {
        /// API group.
        group: String,
        /// Requested version.
        version: String,
        /// Kind.
        kind: String,
        /// The versions that are served.
        served: String,
    },
}

/// Splits `group/version` (or a bare core `version`) into its parts.
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.rsplit_once('/').unwrap_or(("", api_version))
}

/// Converts `object` in place to `version` of its kind.
pub fn to_version(object: &mut Value, version: &str) -> Result<(), ConvertError> {
    let (group, from, kind) = type_meta(object)?;
    let served = crds::find(&group, &kind).ok_or_else(|| ConvertError::UnknownKind {
        group: group.clone(),
        kind: kind.clone(),
    })?;
    for wanted in [from.as_str(), version] {
        if !served.serves(wanted) {
            let mut versions = vec![served.storage_version()];
            versions.extend(served.older_versions.iter().map(|v| v.to_string()));
            return Err(ConvertError::UnservedVersion {
                group,
                version: wanted.to_string(),
                kind,
                served: versions.join(", "),
            });
        }
    }
    object["apiVersion"] = Value::String(format!("{group}/{version}"));
    Ok(())
}

/// Converts `object` in place to the storage version of its kind.
pub fn to_storage(object: &mut Value) -> Result<(), ConvertError> {
    let (group, _, kind) = type_meta(object)?;
    let served = crds::find(&group, &kind).ok_or(ConvertError::UnknownKind { group, kind })?;
    to_version(object, &served.storage_version())
}

fn type_meta(object: &Value) -> Result<(String, String, String), ConvertError> {
    let api_version = object["apiVersion"]
        .as_str()
        .ok_or(ConvertError::MissingTypeMeta)?;
    let kind = object["kind"]
        .as_str()
        .ok_or(ConvertError::MissingTypeMeta)?;
    let (group, version) = split_api_version(api_version);
    Ok((group.to_string(), version.to_string(), kind.to_string()))
}
