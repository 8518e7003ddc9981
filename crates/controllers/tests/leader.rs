//! Leader election against the embedded API server: one holder at a time, and a standby takes
//! over once the holder stops renewing.

use std::time::Duration;

use ferroflux_controllers::leader::{Election, acquire};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};

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
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = ferroflux_apiserver::Config::new(dir.path());
    config.listen = "127.0.0.1:0".parse().expect("address");
    let server = ferroflux_apiserver::serve(config)
        .await
        .expect("API server starts");
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&server.kubeconfig).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("config");
    let client = kube::Client::try_from(config).expect("client");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns = serde_json::from_value(serde_json::json!({"metadata": {"name": "flux-system"}}))
        .expect("ns");
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("namespace");

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
    assert_eq!(
        lease
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_deref()),
        Some("replica-1")
    );

    drop(first);
    let second = tokio::time::timeout(Duration::from_secs(10), standby)
        .await
        .expect("the standby takes over after the lease expires")
        .expect("task");
    let lease = leases
        .get("kustomize-controller-leader-election")
        .await
        .expect("lease");
    assert_eq!(
        lease
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_deref()),
        Some("replica-2")
    );
    assert_eq!(
        lease.spec.as_ref().and_then(|s| s.lease_transitions),
        Some(1)
    );
    drop(second);
    server.shutdown().await;
}
