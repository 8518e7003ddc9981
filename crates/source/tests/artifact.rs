//! Artifact packaging, safe extraction against hostile tarballs, storage and its server.

mod common;

use std::io::Write;
use std::path::Path;

use ferroflux_source::artifact::{
    ExtractError, ExtractOptions, IgnoreRules, extract_tar_gz, pack_dir,
};
use ferroflux_source::storage::{ObjectKey, Storage};

/// Appends an entry with raw name/link bytes, bypassing the tar crate's own path checks,
/// the way a hostile producer would.
fn raw_entry(
    out: &mut tar::Builder<Vec<u8>>,
    name: &[u8],
    kind: tar::EntryType,
    link: &[u8],
    data: &[u8],
) {
    let mut h = tar::Header::new_old();
    {
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name);
        old.linkname[..link.len()].copy_from_slice(link);
    }
    h.set_entry_type(kind);
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    out.append(&h, data).expect("append raw entry");
}

fn gz(tar_bytes: Vec<u8>) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&tar_bytes).expect("gzip");
    enc.finish().expect("gzip finish")
}

/// One raw entry: name, type, link target, data.
type RawEntry<'a> = (&'a [u8], tar::EntryType, &'a [u8], &'a [u8]);

fn hostile(entries: &[RawEntry<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, link, data) in entries {
        raw_entry(&mut b, name, *kind, link, data);
    }
    gz(b.into_inner().expect("finish tar"))
}

/// Extracts into `<sandbox>/out` and checks that the call failed, that nothing exists in
/// `out` afterwards and that the sandbox holds nothing else.
fn refused(archive: &[u8], options: &ExtractOptions) -> ExtractError {
    let sandbox = tempfile::tempdir().expect("tempdir");
    let out = sandbox.path().join("out");
    let err = extract_tar_gz(archive, &out, options).expect_err("hostile archive must be refused");
    assert!(!out.exists(), "the partial extraction was not removed");
    let left: Vec<_> = std::fs::read_dir(sandbox.path())
        .expect("read sandbox")
        .collect();
    assert!(
        left.is_empty(),
        "something was written next to the target: {left:?}"
    );
    err
}

#[test]
fn dot_dot_entry_is_refused() {
    let err = refused(
        &hostile(&[
            (b"ok.yaml", tar::EntryType::Regular, b"", b"fine"),
            (b"../evil.txt", tar::EntryType::Regular, b"", b"pwned"),
        ]),
        &ExtractOptions::default(),
    );
    assert!(matches!(err, ExtractError::UnsafePath { .. }), "{err}");
    assert!(err.to_string().contains("../evil.txt"), "{err}");
}

#[test]
fn absolute_entry_is_refused() {
    let target = std::env::temp_dir().join(format!("ferroflux-abs-evil-{}", std::process::id()));
    let name = target.display().to_string();
    let err = refused(
        &hostile(&[(name.as_bytes(), tar::EntryType::Regular, b"", b"pwned")]),
        &ExtractOptions::default(),
    );
    assert!(matches!(err, ExtractError::UnsafePath { .. }), "{err}");
    assert!(!target.exists(), "an absolute path was written");
}

#[test]
fn symlink_out_of_root_is_refused_and_nothing_is_written_through_it() {
    let err = refused(
        &hostile(&[
            (b"link", tar::EntryType::Symlink, b"../../..", b""),
            (b"link/etc/evil", tar::EntryType::Regular, b"", b"pwned"),
        ]),
        &ExtractOptions::default(),
    );
    assert!(matches!(err, ExtractError::LinkOutOfRoot { .. }), "{err}");
    let err = refused(
        &hostile(&[(b"abs", tar::EntryType::Symlink, b"/etc", b"")]),
        &ExtractOptions::default(),
    );
    assert!(matches!(err, ExtractError::LinkOutOfRoot { .. }), "{err}");
}

#[test]
fn write_through_an_in_root_symlink_is_refused() {
    let err = refused(
        &hostile(&[
            (b"sub/", tar::EntryType::Directory, b"", b""),
            (b"alias", tar::EntryType::Symlink, b"sub", b""),
            (b"alias/x", tar::EntryType::Regular, b"", b"data"),
        ]),
        &ExtractOptions::default(),
    );
    assert!(matches!(err, ExtractError::ThroughSymlink { .. }), "{err}");
}

#[test]
fn hard_link_to_outside_file_is_refused() {
    let err = refused(
        &hostile(&[(b"passwd", tar::EntryType::Link, b"/etc/passwd", b"")]),
        &ExtractOptions::default(),
    );
    assert!(matches!(err, ExtractError::LinkOutOfRoot { .. }), "{err}");
}

#[test]
fn device_and_fifo_entries_are_refused() {
    for kind in [
        tar::EntryType::Char,
        tar::EntryType::Block,
        tar::EntryType::Fifo,
    ] {
        let err = refused(
            &hostile(&[(b"dev", kind, b"", b"")]),
            &ExtractOptions::default(),
        );
        assert!(
            matches!(err, ExtractError::SpecialFile { .. }),
            "{kind:?}: {err}"
        );
    }
}

#[test]
fn archive_over_the_size_limit_is_refused() {
    let big = vec![b'x'; 4096];
    let err = refused(
        &hostile(&[
            (b"a", tar::EntryType::Regular, b"", &big),
            (b"b", tar::EntryType::Regular, b"", &big),
        ]),
        &ExtractOptions {
            max_size: Some(6000),
        },
    );
    assert!(
        matches!(err, ExtractError::TooLarge { max: 6000, .. }),
        "{err}"
    );
}

#[test]
fn corrupt_and_truncated_gzip_are_refused() {
    let err = refused(b"this is not gzip at all", &ExtractOptions::default());
    assert!(matches!(err, ExtractError::Corrupt(_)), "{err}");
    let good = hostile(&[(b"a.yaml", tar::EntryType::Regular, b"", &[b'y'; 10_000])]);
    let err = refused(&good[..good.len() / 2], &ExtractOptions::default());
    assert!(matches!(err, ExtractError::Corrupt(_)), "{err}");
}

#[test]
fn failed_extraction_keeps_what_was_already_in_the_target() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("previous.yaml"), "keep me").expect("write");
    let archive = hostile(&[
        (b"new.yaml", tar::EntryType::Regular, b"", b"new"),
        (b"../evil", tar::EntryType::Regular, b"", b"x"),
    ]);
    extract_tar_gz(&archive[..], dir.path(), &ExtractOptions::default()).expect_err("refused");
    assert_eq!(common::list_files(dir.path()), ["previous.yaml"]);
}

#[test]
fn pack_then_extract_round_trips_files_modes_and_in_root_symlinks() {
    let src = tempfile::tempdir().expect("tempdir");
    common::write_tree(
        src.path(),
        &[
            ("deploy/app.yaml", "kind: Deployment\n"),
            ("run.sh", "#!/bin/sh\n"),
        ],
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        src.path().join("run.sh"),
        std::fs::Permissions::from_mode(0o700),
    )
    .expect("chmod");
    let mut archive = Vec::new();
    let packed = pack_dir(src.path(), &IgnoreRules::none(), &mut archive).expect("pack");
    assert_eq!(packed.files, 2);
    assert_eq!(packed.size, archive.len() as u64);
    assert_eq!(packed.digest, ferroflux_source::sha256_digest(&archive));

    let out = tempfile::tempdir().expect("tempdir");
    let summary =
        extract_tar_gz(&archive[..], out.path(), &ExtractOptions::default()).expect("extract");
    assert_eq!(summary.files, 2);
    assert_eq!(
        common::list_files(out.path()),
        ["deploy/app.yaml", "run.sh"]
    );
    assert_eq!(
        std::fs::read_to_string(out.path().join("deploy/app.yaml")).expect("read"),
        "kind: Deployment\n"
    );
    let mode = std::fs::metadata(out.path().join("run.sh"))
        .expect("stat")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);

    let with_link = hostile(&[
        (b"a/target.yaml", tar::EntryType::Regular, b"", b"t"),
        (
            b"a/b/link.yaml",
            tar::EntryType::Symlink,
            b"../target.yaml",
            b"",
        ),
    ]);
    let out = tempfile::tempdir().expect("tempdir");
    extract_tar_gz(&with_link[..], out.path(), &ExtractOptions::default())
        .expect("in-root link is fine");
    assert_eq!(
        std::fs::read_to_string(out.path().join("a/b/link.yaml")).expect("read through link"),
        "t"
    );
}

fn make_tree(dir: &Path) {
    common::write_tree(
        dir,
        &[
            (
                "clusters/prod/kustomization.yaml",
                "resources: [app.yaml]\n",
            ),
            ("clusters/prod/app.yaml", "kind: ConfigMap\n"),
            ("README.md", "docs\n"),
        ],
    );
}

#[test]
fn same_input_packed_twice_gives_the_same_digest() {
    let a = tempfile::tempdir().expect("tempdir");
    let b = tempfile::tempdir().expect("tempdir");
    make_tree(a.path());
    std::thread::sleep(std::time::Duration::from_millis(20));
    make_tree(b.path());
    let pa = pack_dir(a.path(), &IgnoreRules::flux_defaults(), std::io::sink()).expect("pack");
    let pa2 = pack_dir(a.path(), &IgnoreRules::flux_defaults(), std::io::sink()).expect("pack");
    let pb = pack_dir(b.path(), &IgnoreRules::flux_defaults(), std::io::sink()).expect("pack");
    assert_eq!(pa.digest, pa2.digest);
    assert_eq!(
        pa.digest, pb.digest,
        "different dirs and mtimes, same content"
    );
    std::fs::write(b.path().join("README.md"), "changed\n").expect("write");
    let pc = pack_dir(b.path(), &IgnoreRules::flux_defaults(), std::io::sink()).expect("pack");
    assert_ne!(pa.digest, pc.digest);
}

#[tokio::test]
async fn storage_server_serves_artifacts_with_their_digest_and_refuses_traversal() {
    common::init_tls();
    let root = tempfile::tempdir().expect("tempdir");
    let src = tempfile::tempdir().expect("tempdir");
    make_tree(src.path());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let storage =
        Storage::new(root.path().join("storage"), &format!("http://{addr}")).expect("storage");
    let key = ObjectKey::new("GitRepository", "flux-system", "fleet");
    let artifact = storage
        .store_dir(
            &key,
            "main@sha1:0123abcd",
            src.path(),
            &IgnoreRules::flux_defaults(),
        )
        .expect("store");
    assert_eq!(
        artifact.path,
        "gitrepository/flux-system/fleet/0123abcd.tar.gz"
    );
    let server = storage.clone();
    let task = tokio::spawn(async move { server.serve(listener).await });

    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let body = client
        .get(&artifact.url)
        .send()
        .await
        .expect("GET")
        .bytes()
        .await
        .expect("body");
    assert_eq!(ferroflux_source::sha256_digest(&body), artifact.digest);
    assert_eq!(body.len() as u64, artifact.size);

    let out = tempfile::tempdir().expect("tempdir");
    extract_tar_gz(&body[..], out.path(), &ExtractOptions::default()).expect("extract");
    assert_eq!(
        common::list_files(out.path()),
        [
            "README.md",
            "clusters/prod/app.yaml",
            "clusters/prod/kustomization.yaml"
        ]
    );

    std::fs::write(root.path().join("secret.txt"), "outside the storage root").expect("write");
    let resp = client
        .get(format!("http://{addr}/../secret.txt"))
        .send()
        .await
        .expect("GET");
    assert!(
        !resp.status().is_success(),
        "traversal answered {}",
        resp.status()
    );
    let resp = client
        .get(format!("http://{addr}/%2e%2e/secret.txt"))
        .send()
        .await
        .expect("GET");
    assert!(
        !resp.status().is_success(),
        "encoded traversal answered {}",
        resp.status()
    );
    task.abort();
}
