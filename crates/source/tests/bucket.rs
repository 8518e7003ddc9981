//! S3-compatible buckets against moto's S3 server (with and without SigV4 checks).

mod common;

use ferroflux_source::artifact::IgnoreRules;
use ferroflux_source::bucket::{self, BucketError, BucketSpec};
use ferroflux_testpeers::{S3Server, require};

fn spec(server: &S3Server, bucket: &str, prefix: Option<&str>) -> BucketSpec {
    let (access, secret) = server.access_key().unwrap_or(("test", "test"));
    BucketSpec {
        endpoint: server.endpoint(),
        bucket_name: bucket.into(),
        region: Some("us-east-1".into()),
        prefix: prefix.map(str::to_string),
        insecure: true,
        access_key: Some(access.into()),
        secret_key: Some(secret.into()),
    }
}

#[tokio::test]
async fn prefix_ignore_rules_and_a_changed_object_gives_a_new_revision() {
    common::init_tls();
    let server = require!(S3Server::start(false));
    server
        .put_objects(
            "fleet",
            &[
                ("clusters/prod/app.yaml", b"kind: ConfigMap\n"),
                ("clusters/prod/notes.md", b"docs"),
                ("clusters/prod/.sourceignore", b"*.md\n"),
                ("clusters/prod/logo.png", b"png"),
                ("clusters/staging/app.yaml", b"kind: Secret\n"),
            ],
        )
        .expect("seed bucket");
    let prod = spec(&server, "fleet", Some("clusters/prod"));
    let rules = IgnoreRules::flux_defaults();
    let first = bucket::index(&prod, &rules).await.expect("index");
    let keys: Vec<&str> = first.objects.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["clusters/prod/.sourceignore", "clusters/prod/app.yaml"]
    );

    let dest = tempfile::tempdir().expect("tempdir");
    let n = bucket::download(&prod, &first, dest.path())
        .await
        .expect("download");
    assert_eq!(n, 2);
    assert_eq!(
        std::fs::read_to_string(dest.path().join("clusters/prod/app.yaml")).expect("read"),
        "kind: ConfigMap\n"
    );

    let again = bucket::index(&prod, &rules).await.expect("index");
    assert_eq!(again.revision, first.revision, "nothing changed");
    server
        .put_objects(
            "fleet",
            &[("clusters/prod/app.yaml", b"kind: ConfigMap\ndata: {a: b}\n")],
        )
        .expect("update object");
    let changed = bucket::index(&prod, &rules).await.expect("index");
    assert_ne!(changed.revision, first.revision);
    server
        .put_objects("fleet", &[("clusters/staging/other.yaml", b"x: 1\n")])
        .expect("outside the prefix");
    let outside = bucket::index(&prod, &rules).await.expect("index");
    assert_eq!(
        outside.revision, changed.revision,
        "objects outside the prefix do not count"
    );

    let missing = spec(&server, "no-such-bucket", None);
    let err = bucket::index(&missing, &rules)
        .await
        .expect_err("missing bucket");
    assert!(matches!(err, BucketError::NotFound { .. }), "{err}");
}

#[tokio::test]
async fn sigv4_is_checked_and_a_wrong_secret_is_a_readable_error() {
    common::init_tls();
    let server = require!(S3Server::start(true));
    server
        .put_objects("secure", &[("app.yaml", b"kind: ConfigMap\n")])
        .expect("seed bucket");
    let good = spec(&server, "secure", None);
    let index = bucket::index(&good, &IgnoreRules::flux_defaults())
        .await
        .expect("signed index");
    assert_eq!(index.objects.len(), 1);

    let wrong_secret = "definitely-wrong-secret-value".to_string();
    let bad = BucketSpec {
        secret_key: Some(wrong_secret.clone()),
        ..good.clone()
    };
    let err = bucket::index(&bad, &IgnoreRules::flux_defaults())
        .await
        .expect_err("wrong secret");
    let msg = err.to_string();
    eprintln!("wrong-credential error as users see it: {msg}");
    assert!(matches!(err, BucketError::Auth { .. }), "{msg}");
    assert!(msg.contains("secretRef"), "{msg}");
    assert!(!msg.contains(&wrong_secret), "secret leaked: {msg}");
    assert!(
        !format!("{bad:?}").contains(&wrong_secret),
        "secret in Debug"
    );
}
