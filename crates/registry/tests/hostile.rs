//! Hostile input over HTTP: names and digests that try to leave the store, bodies over the
//! limits, too many uploads, content that does not match its digest. Each is refused with the
//! spec's error code and leaves nothing behind.

mod common;

use ferroflux_registry::Limits;
use reqwest::{Client, Method, StatusCode};
use serde_json::Value;
use sha2::Digest as _;

fn digest(bytes: &[u8]) -> String {
    format!(
        "sha256:{}",
        data_encoding::HEXLOWER.encode(&sha2::Sha256::digest(bytes))
    )
}

struct Http {
    served: common::Served,
    client: Client,
}

impl Http {
    fn new(limits: Limits) -> Http {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Http {
            served: common::serve_with(limits),
            client: Client::new(),
        }
    }

    /// Status and error code (empty when the body has none) of `method path` with `body`.
    fn send(&self, method: Method, path: &str, body: Vec<u8>) -> (StatusCode, String) {
        let url = format!("http://{}{path}", self.served.host());
        self.served.runtime.block_on(async {
            let response = self
                .client
                .request(method, &url)
                .body(body)
                .send()
                .await
                .expect("the registry answers");
            let status = response.status();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            let code = body["errors"][0]["code"].as_str().unwrap_or_default();
            (status, code.to_string())
        })
    }

    /// Every file under the store's `blobs/`.
    fn stored_blobs(&self) -> usize {
        fn count(dir: &std::path::Path) -> usize {
            std::fs::read_dir(dir).map_or(0, |entries| {
                entries
                    .flatten()
                    .map(|e| {
                        if e.path().is_dir() {
                            count(&e.path())
                        } else {
                            1
                        }
                    })
                    .sum()
            })
        }
        count(&self.served.dir.path().join("registry/blobs"))
    }
}

#[test]
fn names_and_digests_that_would_leave_the_store_are_refused() {
    let http = Http::new(Limits::default());
    let hex = "a".repeat(64);
    for (path, code) in [
        ("/v2/..%2F..%2Fetc/manifests/latest", "NAME_INVALID"),
        ("/v2/a/_tags/manifests/latest", "NAME_INVALID"),
        ("/v2/A/tags/list", "NAME_INVALID"),
        (
            &format!("/v2/a/blobs/sha256:..%2F{}", &hex[3..]),
            "DIGEST_INVALID",
        ),
        (
            &format!("/v2/a/blobs/sha256:{}", hex.to_uppercase()),
            "DIGEST_INVALID",
        ),
        (&format!("/v2/a/blobs/md5:{hex}"), "DIGEST_INVALID"),
        ("/v2/a/referrers/latest", "DIGEST_INVALID"),
    ] {
        let (status, got) = http.send(Method::GET, path, Vec::new());
        assert_eq!(
            (status, got.as_str()),
            (StatusCode::BAD_REQUEST, code),
            "{path}"
        );
    }
    let (status, code) = http.send(Method::GET, "/v2/a/manifests/.hidden", Vec::new());
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "MANIFEST_INVALID")
    );
}

#[test]
fn oversized_manifests_and_blobs_are_refused_and_not_stored() {
    let http = Http::new(Limits {
        max_blob_size: 1000,
        ..Limits::default()
    });
    let big = vec![b' '; (4 << 20) + 1];
    let (status, code) = http.send(Method::PUT, "/v2/a/manifests/latest", big);
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "SIZE_INVALID")
    );

    let blob = vec![1u8; 1001];
    let path = format!("/v2/a/blobs/uploads/?digest={}", digest(&blob));
    let (status, code) = http.send(Method::POST, &path, blob.clone());
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "SIZE_INVALID")
    );
    assert_eq!(http.stored_blobs(), 0);

    let fits = vec![1u8; 1000];
    let path = format!("/v2/a/blobs/uploads/?digest={}", digest(&fits));
    assert_eq!(http.send(Method::POST, &path, fits).0, StatusCode::CREATED);
    assert_eq!(http.stored_blobs(), 1);
}

#[test]
fn content_that_does_not_match_its_digest_is_digest_invalid() {
    let http = Http::new(Limits::default());
    let claimed = digest(b"what the client claims");
    let path = format!("/v2/a/blobs/uploads/?digest={claimed}");
    let (status, code) = http.send(Method::POST, &path, b"something else".to_vec());
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "DIGEST_INVALID")
    );
    assert_eq!(http.stored_blobs(), 0);
    let (status, code) = http.send(Method::HEAD, &format!("/v2/a/blobs/{claimed}"), Vec::new());
    assert_eq!((status, code.as_str()), (StatusCode::NOT_FOUND, ""));

    let manifest = br#"{"schemaVersion":2}"#.to_vec();
    let wrong = digest(b"another manifest");
    let (status, code) = http.send(Method::PUT, &format!("/v2/a/manifests/{wrong}"), manifest);
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "DIGEST_INVALID")
    );
}

#[test]
fn upload_sessions_are_bounded() {
    let http = Http::new(Limits {
        max_upload_sessions: 2,
        ..Limits::default()
    });
    for _ in 0..2 {
        assert_eq!(
            http.send(Method::POST, "/v2/a/blobs/uploads/", Vec::new())
                .0,
            StatusCode::ACCEPTED
        );
    }
    let (status, code) = http.send(Method::POST, "/v2/a/blobs/uploads/", Vec::new());
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS")
    );
    let (status, code) = http.send(
        Method::PATCH,
        "/v2/a/blobs/uploads/00000000-0000-0000-0000-000000000000",
        b"x".to_vec(),
    );
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN")
    );
}

#[test]
fn what_an_interrupted_run_left_is_removed_on_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("registry");
    std::fs::create_dir_all(root.join("tmp")).expect("tmp");
    std::fs::create_dir_all(root.join("uploads")).expect("uploads");
    std::fs::write(root.join("tmp/half-written"), b"partial").expect("leftover");
    std::fs::write(root.join("uploads/abandoned"), b"partial").expect("leftover");
    let _router = ferroflux_registry::router(&root).expect("the store opens");
    assert!(!root.join("tmp/half-written").exists());
    assert!(!root.join("uploads/abandoned").exists());
    assert!(root.join("blobs").is_dir());
}
