//! S3-compatible buckets (Flux's Bucket `provider: generic`) through `object_store`.
//!
//! Expected flow (a Bucket reconcile): [`index`] lists the objects under `spec.prefix`,
//! drops those the ignore rules exclude and computes the revision (`sha256:` over the sorted
//! `key etag` lines, so any changed, added or removed object gives a new revision); when the
//! revision differs from the stored artifact's, [`download`] writes the objects into a
//! directory that is then packed and stored.

use std::collections::BTreeMap;
use std::path::Path;

use futures::TryStreamExt as _;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore as _, ObjectStoreExt as _};

use crate::artifact::{IgnoreError, IgnoreRules, SOURCE_IGNORE_FILE, safe_relative};

/// A Bucket's connection settings (`spec` plus the `secretRef` keys).
#[derive(Clone, Default)]
pub struct BucketSpec {
    /// `spec.endpoint`, e.g. `127.0.0.1:9000` or `https://s3.amazonaws.com`.
    pub endpoint: String,
    /// `spec.bucketName`.
    pub bucket_name: String,
    /// `spec.region` (default `us-east-1`).
    pub region: Option<String>,
    /// `spec.prefix`: only keys under it.
    pub prefix: Option<String>,
    /// `spec.insecure`: plain HTTP.
    pub insecure: bool,
    /// `accesskey` of the Secret.
    pub access_key: Option<String>,
    /// `secretkey` of the Secret.
    pub secret_key: Option<String>,
}

impl std::fmt::Debug for BucketSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BucketSpec")
            .field("endpoint", &self.endpoint)
            .field("bucket_name", &self.bucket_name)
            .field("region", &self.region)
            .field("prefix", &self.prefix)
            .field("insecure", &self.insecure)
            .field("access_key", &self.access_key)
            .field(
                "secret_key",
                &self.secret_key.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// A bucket operation failed. Messages never contain the secret key.
#[derive(Debug, thiserror::Error)]
pub enum BucketError {
    /// The store could not be configured.
    #[error("bucket {bucket:?} at {endpoint}: invalid configuration: {message}")]
    Config {
        /// The bucket.
        bucket: String,
        /// The endpoint.
        endpoint: String,
        /// What object_store said.
        message: String,
    },
    /// The server refused the credentials.
    #[error(
        "bucket {bucket:?} at {endpoint}: access denied: {message}; check accesskey/secretkey in the secretRef"
    )]
    Auth {
        /// The bucket.
        bucket: String,
        /// The endpoint.
        endpoint: String,
        /// What the server said (redacted).
        message: String,
    },
    /// The bucket does not exist.
    #[error("bucket {bucket:?} not found at {endpoint}; check spec.bucketName")]
    NotFound {
        /// The bucket.
        bucket: String,
        /// The endpoint.
        endpoint: String,
    },
    /// Listing or downloading failed.
    #[error("bucket {bucket:?} at {endpoint}: {action}: {message}")]
    Store {
        /// The bucket.
        bucket: String,
        /// The endpoint.
        endpoint: String,
        /// What was being done.
        action: String,
        /// What object_store said (redacted).
        message: String,
    },
    /// An object key would escape the download directory.
    #[error("object key {key:?} is not a safe relative path; refusing to download it")]
    UnsafeKey {
        /// The key.
        key: String,
    },
    /// The ignore rules are invalid.
    #[error(transparent)]
    Ignore(#[from] IgnoreError),
    /// Writing a downloaded object failed.
    #[error("writing {path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// The objects selected, with the revision they make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketIndex {
    /// Key -> ETag of every object kept.
    pub objects: BTreeMap<String, String>,
    /// `sha256:<hex>` over the sorted `key etag` lines.
    pub revision: String,
}

/// The revision of an index: `sha256:` of `key etag\n` lines sorted by key.
pub fn index_revision(objects: &BTreeMap<String, String>) -> String {
    let mut text = String::new();
    for (key, etag) in objects {
        text.push_str(key);
        text.push(' ');
        text.push_str(etag);
        text.push('\n');
    }
    crate::sha256_digest(text.as_bytes())
}

struct Bucket<'a> {
    spec: &'a BucketSpec,
    store: AmazonS3,
}

impl<'a> Bucket<'a> {
    fn open(spec: &'a BucketSpec) -> Result<Self, BucketError> {
        let endpoint = if spec.endpoint.contains("://") {
            spec.endpoint.clone()
        } else if spec.insecure {
            format!("http://{}", spec.endpoint)
        } else {
            format!("https://{}", spec.endpoint)
        };
        let mut builder = AmazonS3Builder::new()
            .with_endpoint(endpoint)
            .with_bucket_name(&spec.bucket_name)
            .with_region(spec.region.as_deref().unwrap_or("us-east-1"))
            .with_allow_http(spec.insecure || spec.endpoint.starts_with("http://"))
            .with_virtual_hosted_style_request(false);
        match (&spec.access_key, &spec.secret_key) {
            (Some(a), Some(s)) => {
                builder = builder.with_access_key_id(a).with_secret_access_key(s);
            }
            _ => builder = builder.with_skip_signature(true),
        }
        let store = builder.build().map_err(|e| BucketError::Config {
            bucket: spec.bucket_name.clone(),
            endpoint: spec.endpoint.clone(),
            message: e.to_string(),
        })?;
        Ok(Bucket { spec, store })
    }

    fn err(&self, action: &str, e: &object_store::Error) -> BucketError {
        let full = crate::redact::redact(
            &e.to_string(),
            &[self.spec.secret_key.as_deref().unwrap_or_default()],
        );
        let message = summarize(&full);
        let bucket = self.spec.bucket_name.clone();
        let endpoint = self.spec.endpoint.clone();
        match e {
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => BucketError::Auth {
                bucket,
                endpoint,
                message,
            },
            _ if full.contains("NoSuchBucket") => BucketError::NotFound { bucket, endpoint },
            _ if denied(&full) => BucketError::Auth {
                bucket,
                endpoint,
                message,
            },
            _ => BucketError::Store {
                bucket,
                endpoint,
                action: action.to_string(),
                message,
            },
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BucketError> {
        match self.store.get(&ObjectPath::from(key)).await {
            Ok(r) => Ok(Some(
                r.bytes()
                    .await
                    .map_err(|e| self.err(&format!("download {key:?}"), &e))?
                    .to_vec(),
            )),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err(&format!("download {key:?}"), &e)),
        }
    }
}

/// The first line of a store error plus the S3 error code from an XML body, if any: the
/// raw text carries whole XML documents. The request's timing and retry counters are cut: a
/// message must be the same for the same failure, or every status write would differ.
fn summarize(full: &str) -> String {
    static TIMING: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r" in [0-9.]+(ns|µs|us|ms|s)(, after \d+ retries, max_retries: \d+, retry_timeout: \S+ )?")
            .expect("the pattern is valid")
    });
    let full = TIMING.replace_all(full, "");
    let full = full.as_ref();
    let first = full.lines().next().unwrap_or(full);
    let first = first
        .split("<?xml")
        .next()
        .unwrap_or(first)
        .trim_end_matches([':', ' ']);
    let code = full
        .split_once("<Code>")
        .and_then(|(_, rest)| rest.split_once("</Code>"))
        .map(|(code, _)| code);
    match code {
        Some(code) => format!("{first} ({code})"),
        None => first.to_string(),
    }
}

/// Lists the bucket (under the prefix) and applies Flux's ignore rules (the defaults,
/// a `.sourceignore` object at the prefix root, and `rules`' `spec.ignore`).
///
/// # Errors
/// [`BucketError`]: auth, missing bucket, transport, invalid patterns.
pub async fn index(spec: &BucketSpec, rules: &IgnoreRules) -> Result<BucketIndex, BucketError> {
    let bucket = Bucket::open(spec)?;
    let prefix = spec
        .prefix
        .as_deref()
        .map(|p| p.trim_matches('/'))
        .filter(|p| !p.is_empty());
    let ignore_key = match prefix {
        Some(p) => format!("{p}/{SOURCE_IGNORE_FILE}"),
        None => SOURCE_IGNORE_FILE.to_string(),
    };
    let source_ignore = bucket
        .get(&ignore_key)
        .await?
        .map(|b| String::from_utf8_lossy(&b).into_owned());
    let filter = rules.key_filter(source_ignore.as_deref())?;
    let listed: Vec<object_store::ObjectMeta> = bucket
        .store
        .list(prefix.map(ObjectPath::from).as_ref())
        .try_collect()
        .await
        .map_err(|e| bucket.err("list objects", &e))?;
    let mut objects = BTreeMap::new();
    for meta in listed {
        let key = meta.location.to_string();
        let within = match prefix {
            Some(p) => key
                .strip_prefix(p)
                .map(|k| k.trim_start_matches('/'))
                .unwrap_or(&key),
            None => &key,
        };
        if filter.is_ignored(within) {
            continue;
        }
        // Unquoted, as Flux's S3 client reports ETags, so revisions match Flux's.
        let etag = meta
            .e_tag
            .map(|t| t.trim_matches('"').to_string())
            .unwrap_or_else(|| format!("size-{}", meta.size));
        objects.insert(key, etag);
    }
    let revision = index_revision(&objects);
    Ok(BucketIndex { objects, revision })
}

/// Downloads every object of `index` into `dest` at its key's path.
///
/// # Errors
/// [`BucketError::UnsafeKey`] for keys with `..` or absolute paths; transport and I/O errors.
pub async fn download(
    spec: &BucketSpec,
    index: &BucketIndex,
    dest: &Path,
) -> Result<usize, BucketError> {
    let bucket = Bucket::open(spec)?;
    let mut n = 0;
    for key in index.objects.keys() {
        let rel = match safe_relative(key) {
            Ok(Some(rel)) => rel,
            _ => return Err(BucketError::UnsafeKey { key: key.clone() }),
        };
        let Some(bytes) = bucket.get(key).await? else {
            continue; // deleted since listing; the next reconcile sees a new revision
        };
        let path = dest.join(rel);
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|source| BucketError::Io {
                    path: parent.to_path_buf(),
                    source,
                })?;
        }
        tokio::fs::write(&path, bytes)
            .await
            .map_err(|source| BucketError::Io { path, source })?;
        n += 1;
    }
    Ok(n)
}

/// Whether a store error is S3 refusing the credentials. The status is
/// matched with its words: a bare "403" also matches an endpoint's port
/// (127.0.0.1:40307).
fn denied(full: &str) -> bool {
    full.contains("403 Forbidden")
        || full.contains("SignatureDoesNotMatch")
        || full.contains("InvalidAccessKeyId")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_with_403_in_it_is_not_a_denial() {
        assert!(!denied(
            "Error performing GET http://127.0.0.1:40307/no-such-bucket?list-type=2 - Server returned non-2xx status code: 404 Not Found (NoSuchBucket)"
        ));
        assert!(denied(
            "Error performing GET http://127.0.0.1:5000/fleet?list-type=2 - Server returned non-2xx status code: 403 Forbidden"
        ));
        assert!(denied("... (InvalidAccessKeyId)"));
    }

    #[test]
    fn store_errors_lose_their_timings() {
        let raw = "Error performing GET http://127.0.0.1:5000/fleet?list-type=2 in 12.345ms, after 2 retries, max_retries: 10, retry_timeout: 180s  - Server returned non-2xx status code: 403 Forbidden: <?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code></Error>";
        assert_eq!(
            summarize(raw),
            "Error performing GET http://127.0.0.1:5000/fleet?list-type=2 - Server returned non-2xx status code: 403 Forbidden (SignatureDoesNotMatch)"
        );
        let quick = raw.replace("12.345ms", "3.1s");
        assert_eq!(summarize(&quick), summarize(raw));
    }

    #[test]
    fn revision_changes_with_any_etag_or_key() {
        let mut a = BTreeMap::new();
        a.insert("x.yaml".to_string(), "\"e1\"".to_string());
        let r1 = index_revision(&a);
        a.insert("x.yaml".to_string(), "\"e2\"".to_string());
        let r2 = index_revision(&a);
        a.insert("y.yaml".to_string(), "\"e2\"".to_string());
        let r3 = index_revision(&a);
        assert!(r1.starts_with("sha256:"));
        assert_ne!(r1, r2);
        assert_ne!(r2, r3);
    }

    #[test]
    fn revision_is_the_digest_of_sorted_key_value_lines_as_flux() {
        let mut m = BTreeMap::new();
        m.insert("foo".to_string(), "bar".to_string());
        m.insert("bar".to_string(), "baz".to_string());
        assert_eq!(
            index_revision(&m),
            crate::sha256_digest(b"bar baz\nfoo bar\n")
        );
    }

    #[test]
    fn key_filter_applies_defaults_sourceignore_and_spec_ignore() {
        let rules = IgnoreRules::flux_defaults().with_spec_ignore("drafts/\n");
        let f = rules.key_filter(Some("*.txt\n")).expect("valid");
        assert!(f.is_ignored(".git/config"));
        assert!(f.is_ignored("notes.txt"));
        assert!(f.is_ignored("drafts/app.yaml"));
        assert!(f.is_ignored("logo.png"));
        assert!(!f.is_ignored("apps/app.yaml"));
    }
}
