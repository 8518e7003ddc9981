//! Helm HTTP repository: an index.yaml and chart archives served by a test HTTP server.

mod common;

use std::net::SocketAddr;

use ferroflux_source::artifact::{ExtractOptions, IgnoreRules, extract_tar_gz, pack_dir};
use ferroflux_source::helm_index::{self, HelmAuth, HelmIndexError};

/// Serves `<root>` statically; with `auth`, requests need that basic-auth header.
async fn serve(
    root: std::path::PathBuf,
    auth: Option<(String, String)>,
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    use axum::http::{StatusCode, header};
    let expected = auth.map(|(u, p)| {
        use base64::Engine as _;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
        )
    });
    let app = axum::Router::new()
        .fallback_service(tower_http::services::ServeDir::new(root))
        .layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                let expected = expected.clone();
                async move {
                    let given = req
                        .headers()
                        .get(header::AUTHORIZATION)
                        .and_then(|v| v.to_str().ok());
                    match (&expected, given) {
                        (Some(want), Some(got)) if want == got => next.run(req).await,
                        (Some(_), _) => {
                            axum::response::IntoResponse::into_response(StatusCode::UNAUTHORIZED)
                        }
                        (None, _) => next.run(req).await,
                    }
                }
            },
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, task)
}

/// A repository dir with podinfo 0.9.0, 1.0.0, 1.2.0, 2.0.0-rc.1 under charts/.
fn repository() -> tempfile::TempDir {
    let repo = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(repo.path().join("charts")).expect("mkdir");
    let mut entries = String::from("apiVersion: v1\nentries:\n  podinfo:\n");
    for v in ["0.9.0", "1.0.0", "1.2.0", "2.0.0-rc.1"] {
        let chart = tempfile::tempdir().expect("tempdir");
        common::write_tree(
            chart.path(),
            &[
                (
                    "podinfo/Chart.yaml",
                    &format!("apiVersion: v2\nname: podinfo\nversion: {v}\n"),
                ),
                ("podinfo/values.yaml", "replicaCount: 1\n"),
            ],
        );
        let file = repo.path().join(format!("charts/podinfo-{v}.tgz"));
        let packed = pack_dir(
            chart.path(),
            &IgnoreRules::none(),
            std::fs::File::create(&file).expect("create"),
        )
        .expect("pack chart");
        let hex = packed.digest.trim_start_matches("sha256:");
        entries.push_str(&format!(
            "    - name: podinfo\n      version: {v}\n      urls: [charts/podinfo-{v}.tgz]\n      digest: {hex}\n"
        ));
    }
    std::fs::write(repo.path().join("index.yaml"), entries).expect("write index");
    repo
}

fn client() -> reqwest::Client {
    common::init_tls();
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

#[tokio::test]
async fn picks_the_semver_highest_chart_and_downloads_it_digest_checked() {
    let repo = repository();
    let (addr, task) = serve(repo.path().to_path_buf(), None).await;
    let url = format!("http://{addr}");
    let client = client();
    let (index, raw) = helm_index::fetch_index(&client, &url, None)
        .await
        .expect("index");
    assert!(!raw.is_empty());
    let chart = index.select("podinfo", ">=1.0.0", &url).expect("select");
    assert_eq!(chart.version, "1.2.0");
    let bytes = helm_index::fetch_chart(&client, &url, chart, None, false)
        .await
        .expect("chart");
    let out = tempfile::tempdir().expect("tempdir");
    extract_tar_gz(&bytes[..], out.path(), &ExtractOptions::default()).expect("extract");
    assert!(
        std::fs::read_to_string(out.path().join("podinfo/Chart.yaml"))
            .expect("Chart.yaml")
            .contains("version: 1.2.0")
    );

    // A chart replaced on the server no longer matches the index digest.
    std::fs::write(repo.path().join("charts/podinfo-1.2.0.tgz"), b"tampered").expect("write");
    let err = helm_index::fetch_chart(&client, &url, chart, None, false)
        .await
        .expect_err("digest mismatch");
    assert!(
        matches!(err, HelmIndexError::DigestMismatch { .. }),
        "{err}"
    );
    task.abort();
}

#[tokio::test]
async fn basic_auth_repository() {
    let repo = repository();
    let (addr, task) = serve(
        repo.path().to_path_buf(),
        Some(("helm".into(), "s3cr3t-pw".into())),
    )
    .await;
    let url = format!("http://{addr}/");
    let client = client();
    let err = helm_index::fetch_index(&client, &url, None)
        .await
        .expect_err("401");
    assert!(
        matches!(err, HelmIndexError::Status { status: 401, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("credentials"), "{err}");
    let auth = HelmAuth {
        username: "helm".into(),
        password: "s3cr3t-pw".into(),
    };
    let (index, _) = helm_index::fetch_index(&client, &url, Some(&auth))
        .await
        .expect("index");
    let chart = index.select("podinfo", "", &url).expect("latest stable");
    assert_eq!(chart.version, "1.2.0");
    helm_index::fetch_chart(&client, &url, chart, Some(&auth), false)
        .await
        .expect("same host gets the credentials");
    let wrong = HelmAuth {
        username: "helm".into(),
        password: "nope-pw".into(),
    };
    let err = helm_index::fetch_index(&client, &url, Some(&wrong))
        .await
        .expect_err("wrong");
    assert!(!err.to_string().contains("nope-pw"), "{err}");
    task.abort();
}
