//! Leader election against the API server of `common::cluster`: one holder at a time, and a standby takes
//! over once the holder stops renewing.

use std::time::Duration;

use ferroflux_controllers::leader::{Election, acquire};
use ferroflux_testpeers::require;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;

mod common;

/// Who holds `lease`.
fn holder(lease: &Lease) -> Option<&str> {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.holder_identity.as_deref())
}

fn election(identity: &str) -> Election {
    Election {
        namespace: "flux-system".into(),
        name: "kustomize-controller-leader-election".into(),
        identity: identity.into(),
        lease_duration: Duration::from_secs(2),
        retry_period: Duration::from_millis(300),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_and_a_standby_takes_over() {
    let cluster = require!(common::cluster().await);
    let client = cluster.client.clone();

    let first = acquire(client.clone(), election("replica-1")).await;
    let standby = tokio::spawn(acquire(client.clone(), election("replica-2")));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !standby.is_finished(),
        "the standby waits while the leader renews"
    );
    let leases: Api<Lease> = Api::namespaced(client.clone(), "flux-system");
    let lease = leases
        .get("kustomize-controller-leader-election")
        .await
        .expect("lease");
    assert_eq!(holder(&lease), Some("replica-1"));

    drop(first);
    let second = tokio::time::timeout(Duration::from_secs(10), standby)
        .await
        .expect("the standby takes over after the lease expires")
        .expect("task");
    let lease = leases
        .get("kustomize-controller-leader-election")
        .await
        .expect("lease");
    assert_eq!(holder(&lease), Some("replica-2"));
    assert_eq!(
        lease.spec.as_ref().and_then(|s| s.lease_transitions),
        Some(1)
    );
    drop(second);
    cluster.server.shutdown().await;
}
