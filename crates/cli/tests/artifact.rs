//! `ferroflux push|tag|list|pull|diff artifact` against Debian's `docker-registry`.

use std::path::Path;
use std::process::Output;

use assert_cmd::Command;
use ferroflux_testpeers::{Credentials, Registry, require};

fn ferroflux(args: &[&str]) -> Output {
    Command::cargo_bin("ferroflux")
        .expect("binary")
        .args(args)
        .output()
        .expect("runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write(dir: &Path, rel: &str, body: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().expect("a file has a parent")).expect("mkdir");
    std::fs::write(path, body).expect("write");
}

/// Pushes `dir` to `url` and returns the manifest digest the CLI reports.
fn push(url: &str, dir: &Path, revision: &str, extra: &[&str]) -> String {
    let path = format!("--path={}", dir.display());
    let revision = format!("--revision={revision}");
    let mut args = vec![
        "push",
        "artifact",
        url,
        &path,
        "--source=https://git.example/fleet",
        &revision,
        "--insecure-registry",
    ];
    args.extend_from_slice(extra);
    let out = ferroflux(&args);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let host_repo = url.trim_start_matches("oci://");
    assert!(
        stderr.contains(&format!("► pushing artifact to {host_repo}")),
        "{stderr}"
    );
    let repo = host_repo.rsplit_once(':').map(|(r, _)| r).expect("a tag");
    let prefix = format!("✔ artifact successfully pushed to {repo}@");
    let line = stderr
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no success line: {stderr}"));
    let digest = line[prefix.len()..].to_string();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    digest
}

/// Pushes `src` as 1.0.0 (its `.env` files ignored) and three more versions; returns each
/// version's digest, 1.0.0 first.
fn push_versions(work: &Path, src: &Path, repo: &str) -> Vec<(&'static str, String)> {
    let digest_100 = push(
        &format!("oci://{repo}:1.0.0"),
        src,
        "main@sha1:100",
        &["--ignore-paths=*.env", "--annotations=team=a"],
    );
    let mut digests = vec![("1.0.0", digest_100)];
    for version in ["0.9.0", "1.2.0", "2.0.0-rc.1"] {
        let dir = work.join(version);
        write(
            &dir,
            "app/deployment.yaml",
            &format!("kind: Deployment\nimage: app:{version}\n"),
        );
        digests.push((
            version,
            push(
                &format!("oci://{repo}:{version}"),
                &dir,
                &format!("main@sha1:{version}"),
                &[],
            ),
        ));
    }
    assert_eq!(
        digests
            .iter()
            .map(|(_, d)| d)
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        4,
        "different content, different digests"
    );
    digests
}

/// Tags 1.2.0 as `latest`.
fn tag_latest(repo: &str) {
    let out = ferroflux(&[
        "tag",
        "artifact",
        &format!("oci://{repo}:1.2.0"),
        "--tag=latest",
        "--insecure-registry",
    ]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("✔ artifact tagged as {repo}:latest")),
        "{stderr}"
    );
}

/// `list artifacts` with a semver filter shows the matching tags, newest first, with their
/// digest, source and revision; without a filter, every tag.
fn assert_listed(repo: &str, digests: &[(&str, String)]) {
    let out = ferroflux(&[
        "list",
        "artifacts",
        &format!("oci://{repo}"),
        "--filter-semver=>=1.0.0",
        "--insecure-registry",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "header, 1.2.0, 1.0.0: {stdout}");
    let header: Vec<&str> = lines[0].trim_end().split('\t').map(str::trim).collect();
    assert_eq!(header, ["ARTIFACT", "DIGEST", "SOURCE", "REVISION"]);
    let digest_120 = &digests
        .iter()
        .find(|(v, _)| *v == "1.2.0")
        .expect("pushed")
        .1;
    let first: Vec<&str> = lines[1].trim_end().split('\t').map(str::trim).collect();
    assert_eq!(
        first,
        [
            format!("{repo}:1.2.0").as_str(),
            digest_120,
            "https://git.example/fleet",
            "main@sha1:1.2.0"
        ]
    );
    assert!(lines[2].starts_with(&format!("{repo}:1.0.0")), "{stdout}");

    let out = ferroflux(&[
        "list",
        "artifacts",
        &format!("oci://{repo}"),
        "--insecure-registry",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 6, "all five tags: {stdout}");
    assert!(stdout.contains(&format!("{repo}:latest")), "{stdout}");
}

/// Pulling 1.0.0 reports its source, revision and digest and writes its files, without the
/// ignored ones.
fn assert_pulled(work: &Path, repo: &str, digest_100: &str) {
    let output = work.join("pulled");
    std::fs::create_dir_all(&output).expect("mkdir");
    let out = ferroflux(&[
        "pull",
        "artifact",
        &format!("oci://{repo}:1.0.0"),
        &format!("--output={}", output.display()),
        "--insecure-registry",
    ]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("► pulling artifact from {repo}:1.0.0")),
        "{stderr}"
    );
    assert!(
        stderr.contains("✔ source https://git.example/fleet"),
        "{stderr}"
    );
    assert!(stderr.contains("✔ revision main@sha1:100"), "{stderr}");
    assert!(
        stderr.contains(&format!("✔ digest {digest_100}")),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(output.join("app/deployment.yaml")).expect("pulled"),
        "kind: Deployment\nimage: app:1.0.0\n"
    );
    assert!(
        !output.join("app/local.env").exists(),
        "--ignore-paths kept the file out of the artifact"
    );
}

/// `diff artifact` finds no change in `src` as pushed, then a changed file, then a file the
/// push ignored.
fn assert_diffs(src: &Path, repo: &str) {
    let url = format!("oci://{repo}:1.0.0");
    let path = format!("--path={}", src.display());
    let diff = |extra: &[&str]| {
        let args = [&["diff", "artifact", &url, &path][..], extra].concat();
        ferroflux(&[&args[..], &["--insecure-registry"]].concat())
    };
    let out = diff(&["--ignore-paths=*.env"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("✔ no changes detected"));

    write(
        src,
        "app/deployment.yaml",
        "kind: Deployment\nimage: app:1.0.1\n",
    );
    let out = diff(&["--ignore-paths=*.env"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("~ app/deployment.yaml"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stderr).contains("✗ the remote artifact contents differs from the local one")
    );
    let out = diff(&[]);
    assert!(
        text(&out.stdout).contains("+ app/local.env"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn push_tag_list_pull_and_diff_round_trip() {
    let registry = require!(Registry::start(None));
    let repo = format!("{}/team-a/app", registry.host());
    let work = tempfile::tempdir().expect("temp dir");
    let src = work.path().join("src");
    write(
        &src,
        "app/deployment.yaml",
        "kind: Deployment\nimage: app:1.0.0\n",
    );
    write(&src, "app/local.env", "TOKEN=not-for-the-registry\n");

    let digests = push_versions(work.path(), &src, &repo);
    tag_latest(&repo);
    assert_listed(&repo, &digests);
    assert_pulled(work.path(), &repo, &digests[0].1);
    assert_diffs(&src, &repo);
}

#[test]
fn credentials_are_required_and_never_printed() {
    let credentials = Credentials::generate();
    let registry = require!(Registry::start(Some(credentials.clone())));
    let work = tempfile::tempdir().expect("temp dir");
    write(work.path(), "app/deployment.yaml", "kind: Deployment\n");
    let url = format!("oci://{}/team-b/app:1.0.0", registry.host());
    let path = format!("--path={}", work.path().display());
    let base = [
        "push",
        "artifact",
        url.as_str(),
        path.as_str(),
        "--source=s",
        "--revision=r",
        "--insecure-registry",
    ];

    let out = ferroflux(&base);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("authentication"),
        "{}",
        text(&out.stderr)
    );

    let wrong = format!(
        "--creds={}:{}-wrong",
        credentials.username, credentials.password
    );
    let out = ferroflux(&[&base[..], &[wrong.as_str()]].concat());
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        !stderr.contains(&credentials.password),
        "secret leaked: {stderr}"
    );

    let good = format!("--creds={}:{}", credentials.username, credentials.password);
    let out = ferroflux(&[&base[..], &[good.as_str()]].concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = ferroflux(&["list", "artifacts", &url, "--insecure-registry", &good]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("team-b/app:1.0.0"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn pull_needs_an_existing_output_directory() {
    let out = ferroflux(&[
        "pull",
        "artifact",
        "oci://127.0.0.1:1/app:1.0.0",
        "--output=/nonexistent/ferroflux-out",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("invalid output path"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn default_ignore_paths_and_json_output_are_fluxs() {
    let registry = require!(Registry::start(None));
    let work = tempfile::tempdir().expect("temp dir");
    let src = work.path().join("src");
    write(&src, "app/deployment.yaml", "kind: Deployment\n");
    write(&src, ".git/HEAD", "ref: refs/heads/main\n");
    write(&src, "docs/logo.png", "png");
    let url = format!("oci://{}/team-c/app:2.0.0", registry.host());
    let path = format!("--path={}", src.display());
    let out = ferroflux(&[
        "push",
        "artifact",
        &url,
        &path,
        "--source=https://git.example/fleet",
        "--revision=main@sha1:200",
        "--insecure-registry",
        "-o",
        "json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("►"),
        "machine output stays clean"
    );
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json on stdout");
    let repo = format!("{}/team-c/app", registry.host());
    assert_eq!(info["repository"], repo.as_str());
    assert_eq!(info["tag"], "2.0.0");
    let digest = info["digest"].as_str().expect("digest");
    assert!(digest.starts_with("sha256:"), "{digest}");
    assert_eq!(info["url"], format!("oci://{repo}@{digest}").as_str());

    let output = work.path().join("pulled");
    std::fs::create_dir_all(&output).expect("mkdir");
    let out = ferroflux(&[
        "pull",
        "artifact",
        &url,
        &format!("--output={}", output.display()),
        "--insecure-registry",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(output.join("app/deployment.yaml").is_file());
    assert!(
        !output.join(".git").exists(),
        "VCS files are left out by default"
    );
    assert!(
        !output.join("docs/logo.png").exists(),
        "images are left out by default"
    );
}
