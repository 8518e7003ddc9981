//! Leader election with a `coordination.k8s.io/v1` Lease, as controller-runtime does it: one
//! replica holds the Lease and renews it; the others wait until it expires. Optimistic
//! concurrency (the Lease's resourceVersion) settles races between contenders.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::sync::watch;
use tracing::{info, warn};

/// How a contender behaves.
#[derive(Debug, Clone)]
pub struct Election {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease, e.g. `kustomize-controller-leader-election`.
    pub name: String,
    /// This contender's identity (the holder written in the Lease).
    pub identity: String,
    /// How long a Lease is valid without renewal.
    pub lease_duration: Duration,
    /// How often the holder renews, and contenders retry.
    pub retry_period: Duration,
}

/// Leadership, once acquired: `lost()` resolves if a renewal fails. Dropping it stops the
/// renewals, so the Lease expires and a standby takes over.
pub struct Leadership {
    lost: watch::Receiver<bool>,
    renewer: tokio::task::JoinHandle<()>,
}

impl Drop for Leadership {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

impl Leadership {
    /// Resolves when leadership is lost (the caller should stop reconciling).
    pub async fn lost(&self) {
        let mut lost = self.lost.clone();
        let _ = lost.wait_for(|l| *l).await;
    }
}

fn now() -> MicroTime {
    MicroTime(jiff::Timestamp::now())
}

fn expired(lease: &Lease, at: jiff::Timestamp) -> bool {
    let Some(spec) = &lease.spec else { return true };
    let Some(renewed) = spec.renew_time.as_ref().or(spec.acquire_time.as_ref()) else {
        return true;
    };
    let duration = i64::from(spec.lease_duration_seconds.unwrap_or(15));
    renewed.0.as_second() + duration < at.as_second()
}

/// Waits until this contender holds the Lease, then renews it in the background.
pub async fn acquire(client: Client, election: Election) -> Leadership {
    let api: Api<Lease> = Api::namespaced(client, &election.namespace);
    loop {
        match try_acquire(&api, &election).await {
            Ok(true) => break,
            Ok(false) => {}
            Err(err) => warn!(%err, lease = %election.name, "leader election attempt failed"),
        }
        tokio::time::sleep(election.retry_period).await;
    }
    info!(lease = %election.name, identity = %election.identity, "acquired the leader election lease");
    let (tx, lost) = watch::channel(false);
    let renewer = tokio::spawn(async move {
        loop {
            tokio::time::sleep(election.retry_period).await;
            match try_acquire(&api, &election).await {
                Ok(true) => {}
                outcome => {
                    warn!(?outcome, lease = %election.name, "lost the leader election lease");
                    let _ = tx.send(true);
                    return;
                }
            }
        }
    });
    Leadership { lost, renewer }
}

/// One attempt: create the Lease, renew it when we hold it, take it over when it expired.
async fn try_acquire(api: &Api<Lease>, election: &Election) -> Result<bool, kube::Error> {
    let seconds = i32::try_from(election.lease_duration.as_secs()).unwrap_or(i32::MAX);
    let Some(mut lease) = api.get_opt(&election.name).await? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(election.name.clone()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(election.identity.clone()),
                lease_duration_seconds: Some(seconds),
                acquire_time: Some(now()),
                renew_time: Some(now()),
                lease_transitions: Some(0),
                ..Default::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(err) => Err(err),
        };
    };
    let held_by_us = lease
        .spec
        .as_ref()
        .and_then(|s| s.holder_identity.as_deref())
        == Some(election.identity.as_str());
    if !held_by_us && !expired(&lease, jiff::Timestamp::now()) {
        return Ok(false);
    }
    let spec = lease.spec.get_or_insert_with(Default::default);
    if !held_by_us {
        spec.holder_identity = Some(election.identity.clone());
        spec.acquire_time = Some(now());
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
    }
    spec.renew_time = Some(now());
    spec.lease_duration_seconds = Some(seconds);
    // The update carries the resourceVersion we read: a contender that wrote first wins.
    match api
        .replace(&election.name, &PostParams::default(), &lease)
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_expires_after_its_duration_since_renewal() {
        let renewed = jiff::Timestamp::from_second(1_000).expect("valid");
        let lease = Lease {
            metadata: Default::default(),
            spec: Some(LeaseSpec {
                renew_time: Some(MicroTime(renewed)),
                lease_duration_seconds: Some(15),
                ..Default::default()
            }),
        };
        assert!(!expired(
            &lease,
            jiff::Timestamp::from_second(1_010).expect("valid")
        ));
        assert!(expired(
            &lease,
            jiff::Timestamp::from_second(1_016).expect("valid")
        ));
        assert!(expired(&Lease::default(), renewed));
    }
}
