//! Helm repositories (HTTP): fetch and parse `index.yaml`, pick a chart version, download it.
//!
//! Expected flow (HelmRepository + HelmChart): [`fetch_index`] stores the raw index as the
//! HelmRepository artifact; [`HelmIndex::select`] picks the semver-highest version of a
//! chart within `spec.version` (default `*`, which excludes pre-releases as in Flux);
//! [`fetch_chart`] downloads it (digest-checked when the index has one).

use std::collections::BTreeMap;

use crate::version::{RangeError, parse_range, pick_highest};

/// A Helm repository operation failed. Messages never contain the password.
#[derive(Debug, thiserror::Error)]
pub enum HelmIndexError {
    /// The index is not valid YAML of the expected shape.
    #[error("helm repository index from {url} does not parse: {message}")]
    Parse {
        /// Where it came from.
        url: String,
        /// The parser's message.
        message: String,
    },
    /// The chart is not in the index.
    #[error("chart {chart:?} not found in the index of {url}")]
    ChartNotFound {
        /// The chart.
        chart: String,
        /// The repository.
        url: String,
    },
    /// No version satisfies the range.
    #[error("no version of chart {chart:?} matches {range:?} (available: {available})")]
    NoVersionMatch {
        /// The chart.
        chart: String,
        /// The range.
        range: String,
        /// The versions present.
        available: String,
    },
    /// The version range does not parse.
    #[error(transparent)]
    Range(#[from] RangeError),
    /// The chart version lists no usable URL.
    #[error("chart {chart:?} {version} has no download URL in the index")]
    NoUrl {
        /// The chart.
        chart: String,
        /// The version.
        version: String,
    },
    /// The server answered with an error status.
    #[error("GET {url}: HTTP {status}{hint}")]
    Status {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
        /// What to do about it.
        hint: &'static str,
    },
    /// A downloaded chart does not have the digest the index names.
    #[error("chart from {url} has digest {actual}, the index says {expected}")]
    DigestMismatch {
        /// The URL.
        url: String,
        /// From the index.
        expected: String,
        /// Computed.
        actual: String,
    },
    /// The request failed (connection, TLS, URL).
    #[error("GET {url}: {message}")]
    Http {
        /// The URL.
        url: String,
        /// The transport error.
        message: String,
    },
}

/// A parsed `index.yaml`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HelmIndex {
    /// `apiVersion` (`v1`).
    #[serde(default)]
    pub api_version: String,
    /// Chart name -> versions.
    #[serde(default)]
    pub entries: BTreeMap<String, Vec<ChartVersion>>,
}

/// One chart version of an index.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChartVersion {
    /// Chart name.
    #[serde(default)]
    pub name: String,
    /// Chart version (semver).
    pub version: String,
    /// Download URLs, absolute or relative to the repository URL.
    #[serde(default)]
    pub urls: Vec<String>,
    /// sha256 hex of the chart archive.
    #[serde(default)]
    pub digest: Option<String>,
    /// App version.
    #[serde(default)]
    pub app_version: Option<String>,
}

/// Basic auth for a Helm repository.
#[derive(Clone)]
pub struct HelmAuth {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

impl std::fmt::Debug for HelmAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HelmAuth({}, <redacted>)", self.username)
    }
}

/// Parses index bytes; `url` is only used in messages.
///
/// # Errors
/// [`HelmIndexError::Parse`].
pub fn parse_index(bytes: &[u8], url: &str) -> Result<HelmIndex, HelmIndexError> {
    let index: HelmIndex =
        ferroflux_gocompat::yaml::from_slice(bytes).map_err(|e| HelmIndexError::Parse {
            url: url.to_string(),
            message: e.to_string(),
        })?;
    // Helm refuses an index without `apiVersion` (ErrNoAPIVersion): a truncated or wrong file
    // must not replace the last good index.
    if index.api_version.is_empty() {
        return Err(HelmIndexError::Parse {
            url: url.to_string(),
            message: "no API version specified".into(),
        });
    }
    Ok(index)
}

impl HelmIndex {
    /// The semver-highest version of `chart` within `range` (`*` or empty: the latest
    /// stable version).
    ///
    /// # Errors
    /// [`HelmIndexError::ChartNotFound`], [`HelmIndexError::NoVersionMatch`],
    /// [`HelmIndexError::Range`].
    pub fn select(
        &self,
        chart: &str,
        range: &str,
        url: &str,
    ) -> Result<&ChartVersion, HelmIndexError> {
        let versions = self
            .entries
            .get(chart)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| HelmIndexError::ChartNotFound {
                chart: chart.to_string(),
                url: url.to_string(),
            })?;
        let range = if range.trim().is_empty() { "*" } else { range };
        let constraints = parse_range(range)?;
        let (picked, _) = pick_highest(versions.iter().map(|v| v.version.as_str()), &constraints)
            .ok_or_else(|| HelmIndexError::NoVersionMatch {
            chart: chart.to_string(),
            range: range.to_string(),
            available: versions
                .iter()
                .map(|v| v.version.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })?;
        Ok(versions
            .iter()
            .find(|v| v.version == picked)
            .expect("pick_highest returns one of the given versions"))
    }
}

/// The absolute download URL of `chart` (its first URL, resolved against `repo_url`).
///
/// # Errors
/// [`HelmIndexError::NoUrl`], [`HelmIndexError::Http`] for an unparsable URL.
pub fn chart_url(repo_url: &str, chart: &ChartVersion) -> Result<String, HelmIndexError> {
    let first = chart.urls.first().ok_or_else(|| HelmIndexError::NoUrl {
        chart: chart.name.clone(),
        version: chart.version.clone(),
    })?;
    let base = format!("{}/", repo_url.trim_end_matches('/'));
    let base = reqwest::Url::parse(&base).map_err(|e| HelmIndexError::Http {
        url: repo_url.to_string(),
        message: e.to_string(),
    })?;
    base.join(first)
        .map(|u| u.to_string())
        .map_err(|e| HelmIndexError::Http {
            url: first.clone(),
            message: e.to_string(),
        })
}

/// Downloads `<repo_url>/index.yaml`; returns the parsed index and the raw bytes (the
/// HelmRepository artifact).
///
/// # Errors
/// [`HelmIndexError`] for HTTP failures (401 says to check the credentials) and parse errors.
pub async fn fetch_index(
    client: &reqwest::Client,
    repo_url: &str,
    auth: Option<&HelmAuth>,
) -> Result<(HelmIndex, Vec<u8>), HelmIndexError> {
    let url = format!("{}/index.yaml", repo_url.trim_end_matches('/'));
    let bytes = get(client, &url, auth).await?;
    let index = parse_index(&bytes, &url)?;
    Ok((index, bytes))
}

/// Downloads a chart archive. Credentials are sent only to the repository's own host unless
/// `pass_credentials` (Flux's `spec.passCredentials`) is set.
///
/// # Errors
/// [`HelmIndexError`] for HTTP failures and digest mismatches.
pub async fn fetch_chart(
    client: &reqwest::Client,
    repo_url: &str,
    chart: &ChartVersion,
    auth: Option<&HelmAuth>,
    pass_credentials: bool,
) -> Result<Vec<u8>, HelmIndexError> {
    let url = chart_url(repo_url, chart)?;
    let same_host = reqwest::Url::parse(&url)
        .ok()
        .map(|u| (u.host_str().map(str::to_string), u.port_or_known_default()))
        == reqwest::Url::parse(repo_url)
            .ok()
            .map(|u| (u.host_str().map(str::to_string), u.port_or_known_default()));
    let auth = auth.filter(|_| same_host || pass_credentials);
    let bytes = get(client, &url, auth).await?;
    if let Some(expected) = chart.digest.as_deref().filter(|d| !d.is_empty()) {
        let actual = crate::sha256_digest(&bytes);
        let expected_full = if expected.starts_with("sha256:") {
            expected.to_string()
        } else {
            format!("sha256:{expected}")
        };
        if actual != expected_full {
            return Err(HelmIndexError::DigestMismatch {
                url,
                expected: expected_full,
                actual,
            });
        }
    }
    Ok(bytes)
}

async fn get(
    client: &reqwest::Client,
    url: &str,
    auth: Option<&HelmAuth>,
) -> Result<Vec<u8>, HelmIndexError> {
    let mut req = client.get(url);
    if let Some(a) = auth {
        req = req.basic_auth(&a.username, Some(&a.password));
    }
    let http = |e: reqwest::Error| HelmIndexError::Http {
        url: url.to_string(),
        message: e.without_url().to_string(),
    };
    let resp = req.send().await.map_err(http)?;
    let status = resp.status().as_u16();
    if !resp.status().is_success() {
        return Err(HelmIndexError::Status {
            url: url.to_string(),
            status,
            hint: match status {
                401 | 403 => "; check the credentials in the secretRef",
                404 => "; check the repository URL",
                _ => "",
            },
        });
    }
    Ok(resp.bytes().await.map_err(http)?.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = r#"
apiVersion: v1
entries:
  podinfo:
    - name: podinfo
      version: 2.0.0-rc.1
      urls: [charts/podinfo-2.0.0-rc.1.tgz]
    - name: podinfo
      version: 1.2.0
      urls: [charts/podinfo-1.2.0.tgz]
      digest: abc
    - name: podinfo
      version: 1.0.0
      urls: [https://cdn.example.com/podinfo-1.0.0.tgz]
    - name: podinfo
      version: 0.9.0
      urls: [charts/podinfo-0.9.0.tgz]
generated: "2024-01-01T00:00:00Z"
"#;

    #[test]
    fn selects_highest_stable_in_range() {
        let index = parse_index(INDEX.as_bytes(), "test").expect("parses");
        assert_eq!(
            index
                .select("podinfo", ">=1.0.0", "t")
                .expect("match")
                .version,
            "1.2.0"
        );
        assert_eq!(
            index.select("podinfo", "", "t").expect("match").version,
            "1.2.0"
        );
        assert_eq!(
            index.select("podinfo", "<1", "t").expect("match").version,
            "0.9.0"
        );
        assert!(matches!(
            index.select("podinfo", ">=3", "t"),
            Err(HelmIndexError::NoVersionMatch { .. })
        ));
        assert!(matches!(
            index.select("nginx", "*", "t"),
            Err(HelmIndexError::ChartNotFound { .. })
        ));
    }

    #[test]
    fn chart_urls_resolve_relative_to_the_repository() {
        let index = parse_index(INDEX.as_bytes(), "test").expect("parses");
        let v = index.select("podinfo", "1.2.0", "t").expect("match");
        assert_eq!(
            chart_url("http://127.0.0.1:8080/helm", v).expect("url"),
            "http://127.0.0.1:8080/helm/charts/podinfo-1.2.0.tgz"
        );
        let v = index.select("podinfo", "1.0.0", "t").expect("match");
        assert_eq!(
            chart_url("http://127.0.0.1:8080/helm/", v).expect("url"),
            "https://cdn.example.com/podinfo-1.0.0.tgz"
        );
    }

    #[test]
    fn an_alias_bomb_index_is_refused_quickly() {
        let bomb = include_str!("../../gocompat/testdata/alias-bomb.yaml");
        let start = std::time::Instant::now();
        let err = parse_index(bomb.as_bytes(), "http://repo/index.yaml").expect_err("bomb");
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
        assert!(
            err.to_string()
                .ends_with("yaml: document contains excessive aliasing"),
            "{err}"
        );
    }

    #[test]
    fn invalid_yaml_is_reported_with_its_source() {
        let err = parse_index(b"entries: [unclosed", "http://repo/index.yaml").expect_err("bad");
        assert!(err.to_string().contains("http://repo/index.yaml"), "{err}");
    }

    #[test]
    fn an_index_without_api_version_is_refused_as_helm_does() {
        let err = parse_index(b"entries:\n  podinfo: []\n", "http://repo/index.yaml")
            .expect_err("no apiVersion");
        assert!(
            err.to_string().contains("no API version specified"),
            "{err}"
        );
    }
}
