//! Helm's release record (`helm.sh/helm/v4/pkg/release/v1`) and Helm's Secret storage driver,
//! so that the real `helm list`, `helm history`, `helm get values` and `helm rollback` read and
//! write the releases ferroflux keeps, and ferroflux reads those `helm` wrote.
//!
//! A release `v<N>` of `<name>` is the Secret `sh.helm.release.v1.<name>.v<N>` of type
//! `helm.sh/release.v1`, labelled `name`, `owner=helm`, `status`, `version` (and `createdAt` or
//! `modifiedAt`), whose `data.release` is `base64(gzip(json(record)))`; the Kubernetes API
//! base64s that string once more as it does every Secret value. Records are tenant-writable
//! (anyone allowed to write Secrets in the storage namespace), so [`decode`] bounds what it
//! inflates ([`DEFAULT_MAX_RELEASE_SIZE`]).
//!
//! The module is pure: the caller reads and writes the Secrets ([`to_secret`],
//! [`from_secret`]) and acts on the decisions ([`prune_history`], [`latest`], [`deployed`]).

use std::collections::BTreeMap;
use std::io::{Read, Write};

use base64::Engine;
use jiff::Timestamp;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// The Secret type of Helm's release records.
pub const SECRET_TYPE: &str = "helm.sh/release.v1";
/// The prefix of every record's Secret name (Helm's `HelmStorageType` and driver version).
pub const STORAGE_PREFIX: &str = "sh.helm.release.v1";
/// The `owner` label value Helm stores and queries.
pub const OWNER: &str = "helm";
/// The largest decompressed record [`decode`] accepts (a Secret holds at most 1 MiB of gzip).
pub const DEFAULT_MAX_RELEASE_SIZE: u64 = 32 * 1024 * 1024;
/// Labels Helm's driver manages itself; a release's own labels never carry them.
pub const SYSTEM_LABELS: [&str; 6] = [
    "name",
    "owner",
    "status",
    "version",
    "createdAt",
    "modifiedAt",
];

/// The first bytes of a gzip stream; Helm decodes records without them as plain JSON.
const GZIP_MAGIC: [u8; 3] = [0x1f, 0x8b, 0x08];

/// A release's state, as Helm writes it (`pkg/release/common.Status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// The state is uncertain.
    Unknown,
    /// Pushed to the cluster: the current release.
    Deployed,
    /// Uninstalled with its history kept.
    Uninstalled,
    /// A newer release replaced it.
    Superseded,
    /// Its install, upgrade or rollback failed.
    Failed,
    /// An uninstall is under way.
    Uninstalling,
    /// An install is under way.
    PendingInstall,
    /// An upgrade is under way.
    PendingUpgrade,
    /// A rollback is under way.
    PendingRollback,
}

impl Status {
    /// Helm's word for the status, as in the `status` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Unknown => "unknown",
            Status::Deployed => "deployed",
            Status::Uninstalled => "uninstalled",
            Status::Superseded => "superseded",
            Status::Failed => "failed",
            Status::Uninstalling => "uninstalling",
            Status::PendingInstall => "pending-install",
            Status::PendingUpgrade => "pending-upgrade",
            Status::PendingRollback => "pending-rollback",
        }
    }

    /// An operation is under way (Helm's `IsPending`): a release left so by a crash blocks
    /// every other operation ("another operation is in progress") until it is recovered.
    pub fn is_pending(self) -> bool {
        matches!(
            self,
            Status::PendingInstall | Status::PendingUpgrade | Status::PendingRollback
        )
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One deployment of a chart with its values (`release.v1.Release`). Fields are written as
/// Go's `encoding/json` writes Helm's struct: in its order, empty ones left out where Helm
/// says `omitempty`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Release {
    /// The release name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Dates, status and notes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<Info>,
    /// The chart released.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<ChartRecord>,
    /// The user-supplied values (`helm get values` prints these).
    #[serde(default, skip_serializing_if = "map_is_empty")]
    pub config: Option<Map<String, Value>>,
    /// The rendered manifest, hooks excluded.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub manifest: String,
    /// The chart's hooks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<Hook>,
    /// The revision, from 1.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub version: u32,
    /// The namespace of the release's objects.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// Labels of the release, stored on the Secret rather than in the record.
    #[serde(skip)]
    pub labels: BTreeMap<String, String>,
    /// `ssa` or `csa` (empty: client-side apply).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub apply_method: String,
}

/// Helm's `ApplyMethod` of a release applied with server-side apply.
pub const APPLY_METHOD_SSA: &str = "ssa";

/// Helm's `ApplyMethod` of a release applied with client-side apply (three-way merge).
pub const APPLY_METHOD_CSA: &str = "csa";

fn map_is_empty(map: &Option<Map<String, Value>>) -> bool {
    map.as_ref().is_none_or(Map::is_empty)
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// `release.v1.Info`: when, how and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Info {
    /// When the release was first deployed.
    #[serde(default, with = "go_time", skip_serializing_if = "Option::is_none")]
    pub first_deployed: Option<Timestamp>,
    /// When this revision was deployed.
    #[serde(default, with = "go_time", skip_serializing_if = "Option::is_none")]
    pub last_deployed: Option<Timestamp>,
    /// When it was uninstalled.
    #[serde(default, with = "go_time", skip_serializing_if = "Option::is_none")]
    pub deleted: Option<Timestamp>,
    /// Helm's log line, e.g. `Install complete`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The state.
    pub status: Status,
    /// The revision a rollback went back to.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rollback_revision: u32,
    /// The rendered `NOTES.txt`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub notes: String,
    /// Deployed resources, as Helm may record them (kept as read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Value>,
}

impl Info {
    /// The info of a release starting now with `status` and `description`.
    pub fn new(status: Status, description: impl Into<String>, now: Timestamp) -> Self {
        Info {
            first_deployed: Some(now),
            last_deployed: Some(now),
            deleted: None,
            description: description.into(),
            status,
            rollback_revision: 0,
            notes: String::new(),
            resources: None,
        }
    }
}

/// The chart as the record holds it (`chart.v2.Chart` in JSON): `Chart.yaml`, `Chart.lock`,
/// the templates, default values, schema and other files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChartRecord {
    /// `Chart.yaml` (`chart.v2.Metadata`), kept as JSON so that every field Helm knows survives.
    #[serde(default)]
    pub metadata: Value,
    /// `Chart.lock`, or null.
    #[serde(default)]
    pub lock: Value,
    /// The templates, by path inside the chart.
    #[serde(default, deserialize_with = "null_as_default")]
    pub templates: Vec<File>,
    /// `values.yaml`, or null.
    #[serde(default)]
    pub values: Value,
    /// `values.schema.json`, base64 in JSON as Go writes `[]byte`, or null.
    #[serde(default, with = "go_bytes_opt")]
    pub schema: Option<Vec<u8>>,
    /// The schema's modification time; Helm always writes it (zero time when unknown).
    #[serde(default = "zero_time")]
    pub schemamodtime: String,
    /// The chart's other files.
    #[serde(default, deserialize_with = "null_as_default")]
    pub files: Vec<File>,
}

impl Default for ChartRecord {
    fn default() -> Self {
        ChartRecord {
            metadata: Value::Null,
            lock: Value::Null,
            templates: Vec::new(),
            values: Value::Null,
            schema: None,
            schemamodtime: zero_time(),
            files: Vec::new(),
        }
    }
}

fn zero_time() -> String {
    GO_ZERO_TIME.to_string()
}

/// Go's zero `time.Time` as `encoding/json` writes it.
const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

impl ChartRecord {
    /// `metadata.name`.
    pub fn name(&self) -> &str {
        self.metadata["name"].as_str().unwrap_or_default()
    }
    /// `metadata.version`.
    pub fn version(&self) -> &str {
        self.metadata["version"].as_str().unwrap_or_default()
    }
    /// `metadata.appVersion`, if any.
    pub fn app_version(&self) -> Option<&str> {
        self.metadata["appVersion"]
            .as_str()
            .filter(|v| !v.is_empty())
    }
}

impl ChartRecord {
    /// The record of a loaded chart, its metadata written as Helm's `chart.Metadata` (Go's
    /// field order, empty fields left out).
    pub fn of(chart: &crate::Chart) -> Self {
        let m = &chart.metadata;
        let mut meta = Map::new();
        let mut put = |key: &str, value: Value| {
            let empty = match &value {
                Value::String(s) => s.is_empty(),
                Value::Array(a) => a.is_empty(),
                Value::Object(o) => o.is_empty(),
                Value::Bool(b) => !b,
                _ => false,
            };
            if !empty {
                meta.insert(key.to_string(), value);
            }
        };
        put("name", json!(m.name));
        put("home", json!(m.home));
        put("sources", json!(m.sources));
        put("version", json!(m.version));
        put("description", json!(m.description));
        put("keywords", json!(m.keywords));
        put("maintainers", json!(m.maintainers));
        put("icon", json!(m.icon));
        put("apiVersion", json!(m.api_version));
        put("condition", json!(m.condition));
        put("tags", json!(m.tags));
        put("appVersion", json!(m.app_version));
        put("deprecated", json!(m.deprecated));
        put("annotations", json!(m.annotations));
        put("kubeVersion", json!(m.kube_version));
        put("dependencies", json!(m.dependencies));
        put("type", json!(m.chart_type));
        let files = |files: &[crate::File]| {
            files
                .iter()
                .map(|f| File {
                    name: f.name.clone(),
                    data: f.data.clone(),
                })
                .collect()
        };
        ChartRecord {
            metadata: Value::Object(meta),
            lock: chart.lock.clone().unwrap_or(Value::Null),
            templates: files(&chart.templates),
            values: Value::Object(chart.values.clone()),
            schema: chart.schema.clone(),
            schemamodtime: zero_time(),
            files: files(&chart.files),
        }
    }
}

/// A file of a chart (`chart/common.File`): its path and bytes (base64 in JSON).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct File {
    /// Path inside the chart, e.g. `templates/deployment.yaml`.
    pub name: String,
    /// The content.
    #[serde(with = "go_bytes")]
    pub data: Vec<u8>,
}

/// A chart hook of the release (`release.v1.Hook`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Hook {
    /// The object's name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The object's kind.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// The template it came from.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// The rendered object.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub manifest: String,
    /// `pre-install`, `post-upgrade`, `test`, ...
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<String>,
    /// Its last execution.
    #[serde(default)]
    pub last_run: HookExecution,
    /// `helm.sh/hook-weight`.
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub weight: i64,
    /// `helm.sh/hook-delete-policy`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delete_policies: Vec<String>,
    /// `helm.sh/hook-output-log-policy`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub output_log_policies: Vec<String>,
}

fn is_zero_i64(n: &i64) -> bool {
    *n == 0
}

/// When a hook ran and how it ended (`release.v1.HookExecution`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HookExecution {
    /// Start.
    #[serde(default, with = "go_time", skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    /// End.
    #[serde(default, with = "go_time", skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Timestamp>,
    /// `Unknown`, `Running`, `Succeeded`, `Failed`; empty when it never ran.
    #[serde(default)]
    pub phase: String,
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Go's `time.Time` in JSON: RFC 3339 with nanoseconds; Helm reads `""` as the zero time, and
/// the zero time is no time.
mod go_time {
    use super::*;

    pub fn serialize<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&t.to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        match text.as_deref() {
            None | Some("") => Ok(None),
            Some(text) if text.starts_with("0001-01-01T00:00:00") => Ok(None),
            Some(text) => text
                .parse::<Timestamp>()
                .map(Some)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// Go's `[]byte` in JSON: standard base64.
mod go_bytes {
    use super::*;

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = Option::<String>::deserialize(d)?.unwrap_or_default();
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}

/// Go's nil-able `[]byte`: null when nil.
mod go_bytes_opt {
    use super::*;

    pub fn serialize<S: Serializer>(bytes: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(bytes) => go_bytes::serialize(bytes, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        text.map(|text| {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(serde::de::Error::custom)
        })
        .transpose()
    }
}

/// Why a record could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `data.release` is not base64.
    #[error("release data is not base64: {0}")]
    Base64(#[from] base64::DecodeError),
    /// The gzip stream is broken.
    #[error("release data is not valid gzip: {0}")]
    Gzip(std::io::Error),
    /// The record inflates beyond the budget (a gzip bomb, or a chart far larger than any).
    #[error("release record exceeds {limit} bytes decompressed")]
    TooLarge {
        /// The budget, in bytes.
        limit: u64,
    },
    /// The JSON is not a Helm release record.
    #[error("release record is not valid: {0}")]
    Json(#[from] serde_json::Error),
    /// The Secret is not a Helm release record.
    #[error("not a Helm release Secret: {0}")]
    NotARelease(&'static str),
}

/// The key (and Secret name) of revision `version` of release `name`.
pub fn secret_name(name: &str, version: u32) -> String {
    format!("{STORAGE_PREFIX}.{name}.v{version}")
}

/// `base64(gzip(json(release)))`, Helm's `encodeRelease` (best compression, as Helm).
///
/// # Errors
/// Only if the record cannot be written as JSON (it always can).
pub fn encode(release: &Release) -> Result<String, Error> {
    let json = serde_json::to_vec(release)?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&json).map_err(Error::Gzip)?;
    let bytes = gz.finish().map_err(Error::Gzip)?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// Helm's `decodeRelease`: base64, gunzip when the gzip magic is there (Helm reads plain JSON
/// otherwise), JSON; inflating at most `max_size` bytes.
///
/// # Errors
/// [`Error::Base64`], [`Error::Gzip`], [`Error::TooLarge`] or [`Error::Json`].
pub fn decode(data: &[u8], max_size: u64) -> Result<Release, Error> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(data)?;
    let json = if bytes.len() > 3 && bytes[..3] == GZIP_MAGIC {
        let mut out = Vec::new();
        let mut reader = flate2::read::GzDecoder::new(bytes.as_slice()).take(max_size + 1);
        reader.read_to_end(&mut out).map_err(Error::Gzip)?;
        if out.len() as u64 > max_size {
            return Err(Error::TooLarge { limit: max_size });
        }
        out
    } else if bytes.len() as u64 > max_size {
        return Err(Error::TooLarge { limit: max_size });
    } else {
        bytes
    };
    Ok(serde_json::from_slice(&json)?)
}

/// Which of Helm's timestamp labels a write carries: `createdAt` on create, `modifiedAt` on
/// update (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// A new record.
    Created(i64),
    /// An update of an existing record.
    Modified(i64),
}

/// The Secret (as a Kubernetes JSON object) holding `release` in `namespace`, as Helm's
/// Secret driver writes it: the release's own labels, then `name`, `owner`, `status`,
/// `version` and the timestamp label.
///
/// # Errors
/// As [`encode`].
pub fn to_secret(release: &Release, namespace: &str, written: Written) -> Result<Value, Error> {
    let data = encode(release)?;
    let mut labels: BTreeMap<String, String> = release
        .labels
        .iter()
        .filter(|(k, _)| !SYSTEM_LABELS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let status = release.info.as_ref().map_or(Status::Unknown, |i| i.status);
    labels.insert("name".into(), release.name.clone());
    labels.insert("owner".into(), OWNER.into());
    labels.insert("status".into(), status.as_str().into());
    labels.insert("version".into(), release.version.to_string());
    let (key, at) = match written {
        Written::Created(at) => ("createdAt", at),
        Written::Modified(at) => ("modifiedAt", at),
    };
    labels.insert(key.into(), at.to_string());
    Ok(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": secret_name(&release.name, release.version),
            "namespace": namespace,
            "labels": labels,
        },
        "type": SECRET_TYPE,
        "data": {
            "release": base64::engine::general_purpose::STANDARD.encode(data.as_bytes()),
        },
    }))
}

/// The release a Secret of the API (JSON, `data` base64 as served) holds, its labels without
/// Helm's system labels as Helm's driver reads them.
///
/// # Errors
/// [`Error::NotARelease`] when the type or `data.release` is missing; then as [`decode`].
pub fn from_secret(secret: &Value, max_size: u64) -> Result<Release, Error> {
    if secret["type"].as_str() != Some(SECRET_TYPE) {
        return Err(Error::NotARelease("type is not helm.sh/release.v1"));
    }
    let Some(data) = secret["data"]["release"].as_str() else {
        return Err(Error::NotARelease("no data.release"));
    };
    // The API's base64 of Helm's base64: at most 4/3 of the outer size.
    let inner = base64::engine::general_purpose::STANDARD.decode(data.trim())?;
    let mut release = decode(&inner, max_size)?;
    release.labels = secret["metadata"]["labels"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| !SYSTEM_LABELS.contains(&k.as_str()))
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect();
    Ok(release)
}

/// The label selector of every record of release `name` (Helm's `History` query).
pub fn history_selector(name: &str) -> String {
    format!("name={name},owner={OWNER}")
}

/// The newest revision of `releases` (Helm's `Last`).
pub fn latest(releases: &[Release]) -> Option<&Release> {
    releases.iter().max_by_key(|r| r.version)
}

/// The newest deployed revision (Helm's `Deployed`).
pub fn deployed(releases: &[Release]) -> Option<&Release> {
    releases
        .iter()
        .filter(|r| {
            r.info
                .as_ref()
                .is_some_and(|i| i.status == Status::Deployed)
        })
        .max_by_key(|r| r.version)
}

/// The revisions to delete before storing a new one so that at most `max_history` remain
/// after it (Helm's `Storage.Create` with `MaxHistory`: `removeLeastRecent(max-1)`), oldest
/// first, never the last deployed one. `max_history` 0 keeps everything.
pub fn prune_history(releases: &[Release], max_history: usize) -> Vec<u32> {
    if max_history == 0 {
        return Vec::new();
    }
    let keep = max_history - 1;
    if releases.len() <= keep {
        return Vec::new();
    }
    let last_deployed = deployed(releases).map(|r| r.version);
    let mut versions: Vec<u32> = releases.iter().map(|r| r.version).collect();
    versions.sort_unstable();
    let mut delete = Vec::new();
    for version in versions.iter().copied() {
        if versions.len() - delete.len() == keep {
            break;
        }
        if Some(version) != last_deployed {
            delete.push(version);
        }
    }
    delete
}

/// `sha256:<hex>` of `bytes`, the OCI digest form Flux writes.
pub fn sha256_digest(bytes: &[u8]) -> String {
    let sum = Sha256::digest(bytes);
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for byte in sum.iter() {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// The digest of values Flux records as `configDigest` and `lastAttemptedConfigDigest`
/// (keys sorted, as Go writes maps); empty values digest as `{}`.
pub fn values_digest(values: &Value) -> String {
    let values = match values {
        Value::Object(map) if !map.is_empty() => values.clone(),
        _ => Value::Object(Map::new()),
    };
    sha256_digest(&serde_json::to_vec(&values).unwrap_or_default())
}

/// The digest of helm-controller's observation of a release (name, version, info, chart
/// metadata, config, manifest, hooks less test hooks, namespace): the snapshot's `digest`,
/// which changes whenever the release does.
pub fn observation_digest(release: &Release) -> String {
    let hooks: Vec<&Hook> = release
        .hooks
        .iter()
        .filter(|h| !h.events.iter().any(|e| e == "test"))
        .collect();
    let observed = json!({
        "name": release.name,
        "version": release.version,
        "info": release.info,
        "chartMetadata": release.chart.as_ref().map(|c| c.metadata.clone()),
        "config": release.config,
        "manifest": release.manifest,
        "hooks": hooks,
        "namespace": release.namespace,
    });
    let mut bytes = serde_json::to_vec(&observed).unwrap_or_default();
    bytes.push(b'\n');
    sha256_digest(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(version: u32, status: Status) -> Release {
        Release {
            name: "podinfo".into(),
            version,
            namespace: "apps".into(),
            info: Some(Info::new(status, "x", Timestamp::UNIX_EPOCH)),
            ..Release::default()
        }
    }

    #[test]
    fn history_keeps_max_including_the_new_record_and_the_last_deployed() {
        let history = [
            release(1, Status::Superseded),
            release(2, Status::Deployed),
            release(3, Status::Failed),
            release(4, Status::Failed),
        ];
        // max 3: two stay, the new one makes three; v2 is deployed and stays.
        assert_eq!(prune_history(&history, 3), vec![1, 3]);
        assert_eq!(prune_history(&history, 0), Vec::<u32>::new());
        assert_eq!(prune_history(&history, 10), Vec::<u32>::new());
        assert_eq!(prune_history(&history, 1), vec![1, 3, 4]);
    }

    #[test]
    fn a_gzip_bomb_is_refused_within_its_budget() {
        let big = vec![b' '; 4 * 1024 * 1024];
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&big).expect("in memory");
        let data = base64::engine::general_purpose::STANDARD.encode(gz.finish().expect("gz"));
        let err = decode(data.as_bytes(), 1024 * 1024).expect_err("over budget");
        assert!(matches!(err, Error::TooLarge { limit: 1048576 }), "{err}");
    }

    #[test]
    fn plain_json_records_decode_as_helm_reads_them() {
        let data = base64::engine::general_purpose::STANDARD.encode(
            br#"{"name":"a","version":2,"info":{"status":"deployed","first_deployed":""}}"#,
        );
        let release = decode(data.as_bytes(), 1024).expect("plain JSON");
        assert_eq!(release.version, 2);
        assert_eq!(
            release.info.map(|i| (i.status, i.first_deployed)),
            Some((Status::Deployed, None))
        );
    }
}
