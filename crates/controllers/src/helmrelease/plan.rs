//! The pure decisions of the HelmRelease reconciler: names, what of the spec is refused, and
//! the next Helm action for the state of the stored release (helm-controller's
//! `DetermineReleaseState` and `actionForState`, in their RemediateOnFailure and
//! RetryOnFailure strategies), and which tests run.

use ferroflux_api::helm::HelmRelease;
use ferroflux_helm::release::{Release, Status};
use kube::ResourceExt;

use crate::runtime::ReconcileError;

/// Helm's longest release name; longer ones are shortened with a hash as Flux does.
const MAX_RELEASE_NAME: usize = 53;

/// Where the release goes and where it is recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// The Helm release name.
    pub release: String,
    /// The namespace of the release's objects.
    pub namespace: String,
    /// The namespace of the release Secrets.
    pub storage: String,
}

impl Names {
    /// Flux's names: `spec.releaseName` or `[targetNamespace-]name` (shortened past 53
    /// characters), `targetNamespace` or the object's, `storageNamespace` or the object's.
    pub fn of(hr: &HelmRelease) -> Self {
        let own = hr.namespace().unwrap_or_default();
        let target = hr.spec.target_namespace.clone().filter(|n| !n.is_empty());
        let release = match hr.spec.release_name.as_deref().filter(|n| !n.is_empty()) {
            Some(name) => name.to_string(),
            None => match &target {
                Some(target) => format!("{target}-{}", hr.name_any()),
                None => hr.name_any(),
            },
        };
        Names {
            release: shorten_name(&release),
            namespace: target.unwrap_or_else(|| own.clone()),
            storage: hr
                .spec
                .storage_namespace
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or(own),
        }
    }
}

/// Flux's `ShortenName`: names over 53 characters keep 40 and get `-` and 12 hex of their
/// SHA-256.
pub fn shorten_name(name: &str) -> String {
    if name.len() <= MAX_RELEASE_NAME {
        return name.to_string();
    }
    let digest = ferroflux_helm::release::sha256_digest(name.as_bytes());
    let hex = digest.trim_start_matches("sha256:");
    let mut cut = MAX_RELEASE_NAME - 13;
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}-{}", &name[..cut], &hex[..12])
}

/// Fields the controller does not implement: refused (Stalled, `InvalidSpec`) rather than
/// silently ignored. Every field of Flux 2.9's HelmRelease is implemented but one form of
/// one: a kubeconfig through a cloud provider's workload identity
/// (`spec.kubeConfig.configMapRef`).
pub fn unsupported(hr: &HelmRelease) -> Result<(), ReconcileError> {
    let provider = hr
        .spec
        .kube_config
        .as_ref()
        .is_some_and(|k| k.secret_ref.is_none() && k.config_map_ref.is_some());
    if provider {
        return Err(ReconcileError::stalling(
            ferroflux_api::meta::reason::INVALID,
            "not supported by this helm-controller yet: spec.kubeConfig.configMapRef",
        ));
    }
    Ok(())
}

/// helm-controller's `ReleaseTargetChanged` and its `chartNameChangeStrategy`: the names of
/// the release the status last recorded when the HelmRelease now targets another one (its
/// storage namespace, release namespace or release name changed, or its chart name with the
/// default strategy, `Reinstall`; `InPlaceUpdate` upgrades across a chart rename).
pub fn target_changed(hr: &HelmRelease, chart_name: &str) -> Option<Names> {
    let status = hr.status.as_ref()?;
    let storage = status
        .storage_namespace
        .as_deref()
        .filter(|s| !s.is_empty())?;
    let current = status.history.as_ref()?.first()?;
    let wanted = Names::of(hr);
    let in_place = hr
        .spec
        .upgrade
        .as_ref()
        .and_then(|u| u.chart_name_change_strategy.as_deref())
        == Some("InPlaceUpdate");
    let changed = wanted.storage != storage
        || wanted.namespace != current.namespace
        || wanted.release != current.name
        || (chart_name != current.chart_name && !in_place);
    changed.then(|| Names {
        release: current.name.clone(),
        namespace: current.namespace.clone(),
        storage: storage.to_string(),
    })
}

/// What the controller wants released: the chart version and the digest of the values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    /// The chart's version.
    pub chart_version: String,
    /// The chart's name.
    pub chart_name: String,
    /// `values_digest` of the composed values.
    pub config_digest: String,
    /// The post-renderers or common metadata changed since the last release action of a
    /// new generation (Flux's observed digests): the deployed release is out of sync.
    pub renderers_changed: bool,
}

/// The failure counters and remediation settings that decide retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Install failures since the last success (or change of what is wanted).
    pub install_failures: i64,
    /// Upgrade failures since then.
    pub upgrade_failures: i64,
    /// `spec.install.remediation.retries` (0 by default; negative: for ever).
    pub install_retries: i64,
    /// `spec.upgrade.remediation.retries`.
    pub upgrade_retries: i64,
    /// `spec.install.remediation.remediateLastFailure` (false by default).
    pub install_remediate_last: bool,
    /// `spec.upgrade.remediation.remediateLastFailure` (true when retries > 0 by default).
    pub upgrade_remediate_last: bool,
    /// `spec.upgrade.remediation.strategy` is `uninstall`.
    pub upgrade_uninstalls: bool,
    /// `spec.install.strategy.name` is `RetryOnFailure`: no remediation, retry later.
    pub install_retry: bool,
    /// `spec.upgrade.strategy.name` is `RetryOnFailure`.
    pub upgrade_retry: bool,
}

impl Counters {
    /// The counters and settings of `hr` as its status and spec say.
    pub fn of(hr: &HelmRelease) -> Self {
        let status = hr.status.clone().unwrap_or_default();
        let install = hr
            .spec
            .install
            .as_ref()
            .and_then(|i| i.remediation.clone())
            .unwrap_or_default();
        let upgrade = hr
            .spec
            .upgrade
            .as_ref()
            .and_then(|u| u.remediation.clone())
            .unwrap_or_default();
        let upgrade_retries = upgrade.retries.unwrap_or(0);
        Counters {
            install_failures: status.install_failures.unwrap_or(0),
            upgrade_failures: status.upgrade_failures.unwrap_or(0),
            install_retries: install.retries.unwrap_or(0),
            upgrade_retries,
            install_remediate_last: install.remediate_last_failure.unwrap_or(false),
            upgrade_remediate_last: upgrade
                .remediate_last_failure
                .unwrap_or(upgrade_retries > 0),
            upgrade_uninstalls: upgrade.strategy.as_deref() == Some("uninstall"),
            install_retry: retry_interval(hr, "install").is_some(),
            upgrade_retry: retry_interval(hr, "upgrade").is_some(),
        }
    }

    fn exhausted(retries: i64, failures: i64) -> bool {
        retries >= 0 && failures > retries
    }

    /// No install attempt is left.
    pub fn install_exhausted(&self) -> bool {
        Self::exhausted(self.install_retries, self.install_failures)
    }

    /// No upgrade attempt is left.
    pub fn upgrade_exhausted(&self) -> bool {
        Self::exhausted(self.upgrade_retries, self.upgrade_failures)
    }
}

/// The next step for the stored release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Nothing to do: the deployed release is what is wanted.
    InSync,
    /// No release (or only an uninstalled one): install revision `version`.
    Install {
        /// The revision to write.
        version: u32,
    },
    /// Upgrade to revision `version`.
    Upgrade {
        /// The revision to write.
        version: u32,
    },
    /// A `pending-*` release left by a crash: mark it failed first.
    Unlock {
        /// Its revision.
        version: u32,
    },
    /// A failed install: uninstall it.
    UninstallRemediation,
    /// A failed upgrade: roll back to `to`, as revision `version`.
    Rollback {
        /// The revision rolled back to.
        to: u32,
        /// The new revision.
        version: u32,
    },
    /// Retries are exhausted: `Failed to <action> after <n> attempt(s)`.
    RetriesExceeded {
        /// `install` or `upgrade`.
        action: &'static str,
        /// Failures counted.
        attempts: i64,
    },
    /// A failed upgrade with nothing to roll back to.
    MissingRollbackTarget,
}

/// helm-controller's decision for the newest stored release of `history`, what is wanted,
/// the counters and the last attempted action (`install` or `upgrade`), whose remediation
/// is the active one.
pub fn next(
    history: &[Release],
    desired: &Desired,
    counters: &Counters,
    last_action: Option<&str>,
) -> Next {
    let Some(latest) = ferroflux_helm::release::latest(history) else {
        return install_or_stall(1, counters);
    };
    let status = latest.info.as_ref().map_or(Status::Unknown, |i| i.status);
    let version = latest.version.saturating_add(1);
    match status {
        s if s.is_pending() => Next::Unlock {
            version: latest.version,
        },
        Status::Uninstalled | Status::Uninstalling => install_or_stall(version, counters),
        Status::Failed => failed(history, latest, counters, last_action),
        Status::Deployed if in_sync(latest, desired) && !desired.renderers_changed => Next::InSync,
        _ => upgrade_or_stall(version, counters),
    }
}

/// `next` under a force request: one install (no release) or upgrade instead of nothing to
/// do or retries exhausted; an unlock or remediation still comes first.
pub fn forced(history: &[Release], next: Next) -> Next {
    match next {
        Next::InSync | Next::RetriesExceeded { .. } | Next::MissingRollbackTarget => {
            let latest = ferroflux_helm::release::latest(history);
            let version = latest.map_or(1, |r| r.version.saturating_add(1));
            let absent = latest.is_none_or(|r| {
                r.info
                    .as_ref()
                    .is_some_and(|i| matches!(i.status, Status::Uninstalled | Status::Uninstalling))
            });
            if absent {
                Next::Install { version }
            } else {
                Next::Upgrade { version }
            }
        }
        other => other,
    }
}

fn install_or_stall(version: u32, counters: &Counters) -> Next {
    if counters.install_exhausted() {
        Next::RetriesExceeded {
            action: "install",
            attempts: counters.install_failures,
        }
    } else {
        Next::Install { version }
    }
}

fn upgrade_or_stall(version: u32, counters: &Counters) -> Next {
    if counters.upgrade_exhausted() {
        Next::RetriesExceeded {
            action: "upgrade",
            attempts: counters.upgrade_failures,
        }
    } else {
        Next::Upgrade { version }
    }
}

/// helm-controller's decision for a failed release (stored as failed, or whose tests
/// failed): retry, remediate by the active remediation, or stall when retries are out.
pub fn failed(
    history: &[Release],
    latest: &Release,
    counters: &Counters,
    last_action: Option<&str>,
) -> Next {
    let version = latest.version.saturating_add(1);
    // The remediation of the last attempted action is the active one; without one, or
    // without a failure counted since what is wanted last changed, Flux upgrades.
    let install = match last_action {
        Some("install") => true,
        Some(_) => false,
        None => return Next::Upgrade { version },
    };
    // RetryOnFailure: no remediation, the failed release is upgraded again (as
    // `flux reconcile --force` with no retries left would).
    if (install && counters.install_retry) || (!install && counters.upgrade_retry) {
        return Next::Upgrade { version };
    }
    let (failures, exhausted, remediate_last) = if install {
        let c = counters;
        (
            c.install_failures,
            c.install_exhausted(),
            c.install_remediate_last,
        )
    } else {
        let c = counters;
        (
            c.upgrade_failures,
            c.upgrade_exhausted(),
            c.upgrade_remediate_last,
        )
    };
    if failures <= 0 {
        return Next::Upgrade { version };
    }
    if exhausted && !remediate_last {
        return Next::RetriesExceeded {
            action: if install { "install" } else { "upgrade" },
            attempts: failures,
        };
    }
    if install || counters.upgrade_uninstalls {
        return Next::UninstallRemediation;
    }
    let previous = history
        .iter()
        .filter(|r| r.version < latest.version)
        .filter(|r| {
            r.info
                .as_ref()
                .is_some_and(|i| matches!(i.status, Status::Deployed | Status::Superseded))
        })
        .max_by_key(|r| r.version);
    match previous {
        Some(previous) => Next::Rollback {
            to: previous.version,
            version,
        },
        None => Next::MissingRollbackTarget,
    }
}

/// `spec.test.enable`.
pub fn tests_enabled(hr: &HelmRelease) -> bool {
    hr.spec.test.as_ref().and_then(|t| t.enable) == Some(true)
}

/// Whether the test hook `name` runs, by `spec.test.filters` as Helm's `--filter`: hooks
/// named by an `exclude` filter are skipped; with any including filter, only those named run.
pub fn test_selected(hr: &HelmRelease, name: &str) -> bool {
    let filters = hr
        .spec
        .test
        .as_ref()
        .and_then(|t| t.filters.clone())
        .unwrap_or_default();
    let excluded = filters
        .iter()
        .any(|f| f.exclude == Some(true) && f.name == name);
    let mut included = filters
        .iter()
        .filter(|f| f.exclude != Some(true))
        .peekable();
    let selected = included.peek().is_none() || included.any(|f| f.name == name);
    !excluded && selected
}

/// Flux's `MustIgnoreTestFailures` of the active remediation (by the last attempted action):
/// its `ignoreTestFailures`, else `spec.test.ignoreFailures`.
pub fn ignores_test_failures(hr: &HelmRelease, last_action: Option<&str>) -> bool {
    let test = hr.spec.test.as_ref().and_then(|t| t.ignore_failures);
    let remediation = match last_action {
        Some("install") => hr
            .spec
            .install
            .as_ref()
            .and_then(|i| i.remediation.as_ref())
            .and_then(|r| r.ignore_test_failures),
        Some(_) => hr
            .spec
            .upgrade
            .as_ref()
            .and_then(|u| u.remediation.as_ref())
            .and_then(|r| r.ignore_test_failures),
        None => None,
    };
    remediation.or(test).unwrap_or(false)
}

/// Flux's default `retryInterval` of the RetryOnFailure strategy.
pub const DEFAULT_RETRY_INTERVAL: &str = "5m";

/// The `retryInterval` (a Go duration, `5m` when unset) of `spec.<action>.strategy` when it
/// is `RetryOnFailure`; `None` for Flux's default strategy, RemediateOnFailure.
pub fn retry_interval(hr: &HelmRelease, action: &str) -> Option<String> {
    let (name, interval) = match action {
        "install" => {
            let strategy = hr.spec.install.as_ref()?.strategy.as_ref()?;
            (strategy.name.as_str(), strategy.retry_interval.clone())
        }
        _ => {
            let strategy = hr.spec.upgrade.as_ref()?.strategy.as_ref()?;
            (strategy.name.as_str(), strategy.retry_interval.clone())
        }
    };
    (name == "RetryOnFailure").then(|| interval.unwrap_or_else(|| DEFAULT_RETRY_INTERVAL.into()))
}

/// The deployed release has the wanted chart version and values.
fn in_sync(release: &Release, desired: &Desired) -> bool {
    let chart = release.chart.as_ref();
    let config = serde_json::Value::Object(release.config.clone().unwrap_or_default());
    chart.is_some_and(|c| c.version() == desired.chart_version && c.name() == desired.chart_name)
        && ferroflux_helm::release::values_digest(&config) == desired.config_digest
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferroflux_helm::release::{ChartRecord, Info};
    use serde_json::json;

    fn release(version: u32, status: Status, chart_version: &str) -> Release {
        Release {
            name: "podinfo".into(),
            version,
            info: Some(Info::new(status, "", jiff::Timestamp::UNIX_EPOCH)),
            chart: Some(ChartRecord {
                metadata: json!({"name": "podinfo", "version": chart_version}),
                ..ChartRecord::default()
            }),
            ..Release::default()
        }
    }

    fn desired(version: &str) -> Desired {
        Desired {
            chart_version: version.into(),
            chart_name: "podinfo".into(),
            config_digest: ferroflux_helm::release::values_digest(&json!({})),
            renderers_changed: false,
        }
    }

    #[test]
    fn install_upgrade_and_in_sync() {
        let counters = Counters::default();
        assert_eq!(
            next(&[], &desired("1.0.0"), &counters, None),
            Next::Install { version: 1 }
        );
        let history = [release(1, Status::Deployed, "1.0.0")];
        assert_eq!(
            next(&history, &desired("1.0.0"), &counters, None),
            Next::InSync
        );
        assert_eq!(
            next(&history, &desired("1.1.0"), &counters, None),
            Next::Upgrade { version: 2 }
        );
    }

    #[test]
    fn a_pending_release_is_unlocked_first() {
        let history = [
            release(1, Status::Deployed, "1"),
            release(2, Status::PendingUpgrade, "2"),
        ];
        assert_eq!(
            next(
                &history,
                &desired("2"),
                &Counters::default(),
                Some("upgrade")
            ),
            Next::Unlock { version: 2 }
        );
    }

    #[test]
    fn a_failed_upgrade_rolls_back_while_retries_last_then_stalls() {
        let history = [
            release(1, Status::Superseded, "1"),
            release(2, Status::Deployed, "1"),
            release(3, Status::Failed, "2"),
        ];
        let mut counters = Counters {
            upgrade_failures: 1,
            upgrade_retries: 1,
            upgrade_remediate_last: true,
            ..Counters::default()
        };
        assert_eq!(
            next(&history, &desired("2"), &counters, Some("upgrade")),
            Next::Rollback { to: 2, version: 4 }
        );
        counters.upgrade_failures = 2;
        counters.upgrade_remediate_last = false;
        assert_eq!(
            next(&history, &desired("2"), &counters, Some("upgrade")),
            Next::RetriesExceeded {
                action: "upgrade",
                attempts: 2
            }
        );
    }

    #[test]
    fn a_failed_install_without_retries_stalls_and_with_retries_uninstalls() {
        let history = [release(1, Status::Failed, "1")];
        let mut counters = Counters {
            install_failures: 1,
            ..Counters::default()
        };
        assert_eq!(
            next(
                &history,
                &desired("1"),
                &Counters::default(),
                Some("install")
            ),
            Next::Upgrade { version: 2 },
            "no failure counted since the spec changed: upgrade"
        );
        assert_eq!(
            next(&history, &desired("1"), &counters, Some("install")),
            Next::RetriesExceeded {
                action: "install",
                attempts: 1
            }
        );
        counters.install_retries = 2;
        assert_eq!(
            next(&history, &desired("1"), &counters, Some("install")),
            Next::UninstallRemediation
        );
    }

    #[test]
    fn changed_post_renderers_upgrade_a_release_in_sync() {
        let history = [release(1, Status::Deployed, "1")];
        let mut wanted = desired("1");
        wanted.renderers_changed = true;
        assert_eq!(
            next(&history, &wanted, &Counters::default(), Some("install")),
            Next::Upgrade { version: 2 }
        );
    }

    #[test]
    fn retry_on_failure_upgrades_a_failed_release_without_remediation() {
        let history = [
            release(1, Status::Deployed, "1"),
            release(2, Status::Failed, "2"),
        ];
        let counters = Counters {
            upgrade_failures: 3,
            upgrade_retry: true,
            ..Counters::default()
        };
        assert_eq!(
            next(&history, &desired("2"), &counters, Some("upgrade")),
            Next::Upgrade { version: 3 }
        );
        let failed_install = [release(1, Status::Failed, "1")];
        let counters = Counters {
            install_failures: 1,
            install_retry: true,
            ..Counters::default()
        };
        assert_eq!(
            next(&failed_install, &desired("1"), &counters, Some("install")),
            Next::Upgrade { version: 2 }
        );
    }

    #[test]
    fn retry_interval_defaults_to_five_minutes() {
        let mut hr = HelmRelease::new("a", Default::default());
        assert_eq!(retry_interval(&hr, "install"), None);
        hr.spec.install = Some(ferroflux_api::helm::Install {
            strategy: Some(ferroflux_api::helm::InstallStrategy {
                name: "RetryOnFailure".into(),
                retry_interval: None,
            }),
            ..Default::default()
        });
        assert_eq!(retry_interval(&hr, "install").as_deref(), Some("5m"));
        assert_eq!(retry_interval(&hr, "upgrade"), None);
    }

    #[test]
    fn test_filters_exclude_then_include_as_helm() {
        use ferroflux_api::helm::{Test, TestFilter};
        let mut hr = HelmRelease::new("a", Default::default());
        assert!(test_selected(&hr, "any"));
        let filter = |name: &str, exclude: bool| TestFilter {
            name: name.into(),
            exclude: Some(exclude),
        };
        hr.spec.test = Some(Test {
            filters: Some(vec![filter("skip", true)]),
            ..Test::default()
        });
        assert!(!test_selected(&hr, "skip"));
        assert!(test_selected(&hr, "other"));
        hr.spec.test = Some(Test {
            filters: Some(vec![filter("only", false), filter("skip", true)]),
            ..Test::default()
        });
        assert!(test_selected(&hr, "only"));
        assert!(!test_selected(&hr, "other"));
        assert!(!test_selected(&hr, "skip"));
    }

    #[test]
    fn the_active_remediation_decides_whether_test_failures_count() {
        let mut hr = HelmRelease::new("a", Default::default());
        hr.spec.test = Some(ferroflux_api::helm::Test {
            ignore_failures: Some(true),
            ..Default::default()
        });
        assert!(ignores_test_failures(&hr, Some("upgrade")));
        hr.spec.upgrade = Some(ferroflux_api::helm::Upgrade {
            remediation: Some(ferroflux_api::helm::UpgradeRemediation {
                ignore_test_failures: Some(false),
                ..Default::default()
            }),
            ..Default::default()
        });
        assert!(!ignores_test_failures(&hr, Some("upgrade")));
        assert!(ignores_test_failures(&hr, Some("install")));
    }

    #[test]
    fn long_names_are_shortened_as_flux_does() {
        let name = "a".repeat(60);
        let short = shorten_name(&name);
        assert_eq!(short.len(), 53);
        assert!(short.starts_with(&"a".repeat(40)));
        assert_eq!(shorten_name("podinfo"), "podinfo");
    }
}
