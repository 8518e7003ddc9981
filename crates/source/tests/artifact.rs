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

/// [`refused`] for an archive of hostile `entries`, extracted with the default options.
fn refused_entries(entries: &[RawEntry<'_>]) -> ExtractError {
    refused(&hostile(entries), &ExtractOptions::default())
}

#[test]
fn dot_dot_entry_is_refused() {
    let err = refused_entries(&[
        (b"ok.yaml", tar::EntryType::Regular, b"", b"fine"),
        (b"../evil.txt", tar::EntryType::Regular, b"", b"pwned"),
    ]);
    assert!(matches!(err, ExtractError::UnsafePath { .. }), "{err}");
    assert!(err.to_string().contains("../evil.txt"), "{err}");
}

#[test]
fn absolute_entry_is_refused() {
    let target = std::env::temp_dir().join(format!("ferroflux-abs-evil-{}", std::process::id()));
    let name = target.display().to_string();
    let err = refused_entries(&[(name.as_bytes(), tar::EntryType::Regular, b"", b"pwned")]);
    assert!(matches!(err, ExtractError::UnsafePath { .. }), "{err}");
    assert!(!target.exists(), "an absolute path was written");
}

/// Extracts `archive` into `<sandbox>/out` and returns the sandbox, after checking that the
/// output holds no symlink and that nothing was written next to `out`.
fn extracted(
    archive: &[u8],
) -> (
    tempfile::TempDir,
    ferroflux_source::artifact::ExtractSummary,
) {
    let sandbox = tempfile::tempdir().expect("tempdir");
    let out = sandbox.path().join("out");
    let summary = extract_tar_gz(archive, &out, &ExtractOptions::default()).expect("extract");
    let left: Vec<_> = std::fs::read_dir(sandbox.path())
        .expect("read sandbox")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(left, ["out"], "something was written next to the target");
    assert_eq!(common::list_symlinks(&out), Vec::<String>::new());
    (sandbox, summary)
}

#[test]
fn symlinks_are_dropped_and_entries_behind_them_stay_inside_the_root() {
    // Flux's Untar skips symlinks (WithSkipSymlinks): a chain that passes a lexical check,
    // absolute links and in-root links alike.
    let (sandbox, summary) = extracted(&hostile(&[
        (b"a/up", tar::EntryType::Symlink, b"..", b""),
        (
            b"a/b",
            tar::EntryType::Symlink,
            b"up/a/up/a/up/a/up/../../..",
            b"",
        ),
        (b"abs", tar::EntryType::Symlink, b"/etc", b""),
        (b"escape", tar::EntryType::Symlink, b"../../..", b""),
        (b"a/target.yaml", tar::EntryType::Regular, b"", b"t"),
        (b"a/link.yaml", tar::EntryType::Symlink, b"target.yaml", b""),
        (
            b"escape/etc/evil",
            tar::EntryType::Regular,
            b"",
            b"contained",
        ),
    ]));
    assert_eq!(summary.skipped_symlinks, 5);
    let out = sandbox.path().join("out");
    assert_eq!(
        common::list_files(&out),
        ["a/target.yaml", "escape/etc/evil"]
    );
}

#[test]
fn write_through_a_symlink_already_in_the_target_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outside = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink(outside.path(), dir.path().join("alias")).expect("symlink");
    let archive = hostile(&[(b"alias/x", tar::EntryType::Regular, b"", b"data")]);
    let err =
        extract_tar_gz(&archive[..], dir.path(), &ExtractOptions::default()).expect_err("refused");
    assert!(matches!(err, ExtractError::ThroughSymlink { .. }), "{err}");
    assert!(!outside.path().join("x").exists());
}

#[test]
fn hard_link_to_outside_file_is_refused() {
    let err = refused_entries(&[(b"passwd", tar::EntryType::Link, b"/etc/passwd", b"")]);
    assert!(matches!(err, ExtractError::LinkOutOfRoot { .. }), "{err}");
    let err = refused_entries(&[(b"passwd", tar::EntryType::Link, b"../../etc/passwd", b"")]);
    assert!(matches!(err, ExtractError::LinkOutOfRoot { .. }), "{err}");
}

#[test]
fn hard_link_through_a_dropped_symlink_is_refused() {
    let err = refused_entries(&[
        (b"etc", tar::EntryType::Symlink, b"/etc", b""),
        (b"passwd", tar::EntryType::Link, b"etc/passwd", b""),
    ]);
    assert!(matches!(err, ExtractError::LinkOutOfRoot { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("is not a regular file inside the extraction directory"),
        "{err}"
    );
}

#[test]
fn device_and_fifo_entries_are_refused() {
    for kind in [
        tar::EntryType::Char,
        tar::EntryType::Block,
        tar::EntryType::Fifo,
    ] {
        let err = refused_entries(&[(b"dev", kind, b"", b"")]);
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
            max_size: 6000,
            ..ExtractOptions::default()
        },
    );
    assert!(
        matches!(err, ExtractError::TooLarge { max: 6000, .. }),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "artifact exceeds the size limit of 6000 bytes (at entry \"b\"); the unpacked content is too large"
    );
}

/// A raw header block: `name`, type, the `size` it claims (true or not), valid checksum.
fn header_block(name: &[u8], kind: tar::EntryType, size: u64) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_cksum();
    h.as_bytes().to_vec()
}

/// Incompressible bytes, so that the compressed stream is as long as the data.
fn noise(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

/// Counts the compressed bytes the extractor pulls from its input.
struct Counting<'a> {
    data: &'a [u8],
    read: std::rc::Rc<std::cell::Cell<usize>>,
}

impl std::io::Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.data.read(buf)?;
        self.read.set(self.read.get() + n);
        Ok(n)
    }
}

/// Extracts `tar_bytes` (gzipped here) and returns the error and how many compressed bytes
/// were read, checking that nothing was left behind.
fn refused_after_reading(tar_bytes: Vec<u8>, options: &ExtractOptions) -> (ExtractError, usize) {
    let archive = gz(tar_bytes);
    assert!(
        archive.len() > 4 << 20,
        "the test needs a long compressed stream"
    );
    let read = std::rc::Rc::new(std::cell::Cell::new(0));
    let input = Counting {
        data: &archive,
        read: read.clone(),
    };
    let sandbox = tempfile::tempdir().expect("tempdir");
    let out = sandbox.path().join("out");
    let err = extract_tar_gz(input, &out, options).expect_err("hostile archive must be refused");
    assert!(!out.exists(), "the partial extraction was not removed");
    (err, read.get())
}

/// A header claiming 3 GiB followed by 5 MiB of real data: the extractor must refuse it
/// from the header alone, without reading (let alone buffering) what follows.
fn giant_record(kind: tar::EntryType) -> Vec<u8> {
    let mut tar_bytes = header_block(b"././@LongLink", kind, 3 << 30);
    tar_bytes.extend(noise(5 << 20));
    tar_bytes
}

/// A [`giant_record`] of each of `kinds` is refused with an error `expected` holds for, before
/// 1 MiB of the compressed stream is read.
fn refused_unread(kinds: [tar::EntryType; 2], expected: fn(&ExtractError) -> bool) {
    for kind in kinds {
        let (err, read) = refused_after_reading(giant_record(kind), &ExtractOptions::default());
        assert!(expected(&err), "{kind:?}: {err}");
        assert!(read < 1 << 20, "{kind:?}: read {read} compressed bytes");
    }
}

#[test]
fn giant_gnu_long_name_header_is_refused_before_its_data_is_read() {
    refused_unread(
        [tar::EntryType::GNULongName, tar::EntryType::GNULongLink],
        |err| matches!(err, ExtractError::HeaderTooLarge { size, .. } if *size == 3 << 30),
    );
    let (err, _) = refused_after_reading(
        giant_record(tar::EntryType::GNULongName),
        &ExtractOptions::default(),
    );
    assert_eq!(
        err.to_string(),
        "refused tarball: a GNU long name of 3221225472 bytes exceeds the limit of 8192 bytes; the artifact may be malicious"
    );
}

#[test]
fn giant_pax_header_is_refused_before_its_data_is_read() {
    refused_unread(
        [tar::EntryType::XHeader, tar::EntryType::XGlobalHeader],
        |err| matches!(err, ExtractError::HeaderTooLarge { max, .. } if *max == 1 << 20),
    );
}

#[test]
fn long_name_over_its_cap_is_refused_even_when_the_data_is_there() {
    // 2 MiB of real long-name data: within the size budget, over the header cap.
    let size: u64 = 2 << 20;
    let mut tar_bytes = header_block(b"././@LongLink", tar::EntryType::GNULongName, size);
    tar_bytes.extend(vec![b'a'; 2 << 20]);
    tar_bytes.extend(header_block(b"x", tar::EntryType::Regular, 0));
    tar_bytes.extend([0; 1024]);
    let err = refused(&gz(tar_bytes), &ExtractOptions::default());
    assert!(matches!(err, ExtractError::HeaderTooLarge { .. }), "{err}");
}

/// A PAX extended header block plus its data, padded.
fn pax_header(record: &str) -> Vec<u8> {
    let mut out = header_block(b"PaxHeader", tar::EntryType::XHeader, record.len() as u64);
    let mut data = record.as_bytes().to_vec();
    data.resize(data.len().div_ceil(512) * 512, 0);
    out.extend(data);
    out
}

#[test]
fn gnu_long_names_end_at_the_first_nul_and_pax_paths_are_honoured() {
    let deep = format!("{}/app.yaml", "d".repeat(150));
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(4);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    // The tar crate writes a GNU long-name record for paths over 100 bytes.
    b.append_data(&mut h, &deep, &b"kind"[..]).expect("append");
    let mut tar_bytes = b.into_inner().expect("finish");
    tar_bytes.truncate(tar_bytes.len() - 1024);
    let pax_path = format!("pax/{}.yaml", "p".repeat(120));
    let record = format!("path={pax_path}\n");
    tar_bytes.extend(pax_header(&format!("{} {record}", record.len() + 4)));
    tar_bytes.extend(header_block(b"short-name", tar::EntryType::Regular, 3));
    tar_bytes.extend(b"pax");
    tar_bytes.extend([0; 509]);
    // A GNU long name is a C string, as Go's archive/tar reads it: it ends at the first NUL.
    let c_name = b"c-string.yaml\0\0left-over bytes";
    tar_bytes.extend(header_block(
        b"././@LongLink",
        tar::EntryType::GNULongName,
        c_name.len() as u64,
    ));
    let mut data = c_name.to_vec();
    data.resize(512, 0);
    tar_bytes.extend(data);
    tar_bytes.extend(header_block(b"short", tar::EntryType::Regular, 0));
    tar_bytes.extend([0; 1024]);
    let out = tempfile::tempdir().expect("tempdir");
    extract_tar_gz(&gz(tar_bytes)[..], out.path(), &ExtractOptions::default()).expect("extract");
    assert_eq!(
        common::list_files(out.path()),
        ["c-string.yaml".to_string(), deep, pax_path]
    );
}

#[test]
fn pax_size_that_disagrees_with_the_header_is_refused() {
    let mut tar_bytes = pax_header("16 size=1048576\n");
    tar_bytes.extend(header_block(b"a.yaml", tar::EntryType::Regular, 0));
    tar_bytes.extend([0; 1024]);
    let err = refused(&gz(tar_bytes), &ExtractOptions::default());
    assert!(matches!(err, ExtractError::Corrupt(_)), "{err}");
    assert!(err.to_string().contains("PAX size"), "{err}");
}

#[test]
fn too_many_entries_are_refused() {
    let names: Vec<String> = (0..11).map(|i| format!("d{i}/")).collect();
    let entries: Vec<RawEntry<'_>> = names
        .iter()
        .map(|n| (n.as_bytes(), tar::EntryType::Directory, &b""[..], &b""[..]))
        .collect();
    let options = ExtractOptions {
        max_entries: 10,
        ..ExtractOptions::default()
    };
    let err = refused(&hostile(&entries), &options);
    assert!(
        matches!(err, ExtractError::TooManyEntries { max: 10 }),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "artifact exceeds the limit of 10 tar entries"
    );
    let sandbox = tempfile::tempdir().expect("tempdir");
    extract_tar_gz(&hostile(&entries[..10])[..], sandbox.path(), &options).expect("ten fit");
}

#[test]
fn data_of_entries_that_are_not_files_counts_against_the_budget() {
    // A directory (or a dropped symlink) claiming 3 GiB of data: the reader would have to
    // decompress all of it to reach the next header.
    for kind in [tar::EntryType::Directory, tar::EntryType::Symlink] {
        let mut tar_bytes = header_block(b"dir/", kind, 3 << 30);
        tar_bytes.extend(noise(5 << 20));
        let (err, read) = refused_after_reading(tar_bytes, &ExtractOptions::default());
        assert!(
            matches!(err, ExtractError::TooLarge { max, .. } if max == 100 << 20),
            "{kind:?}: {err}"
        );
        assert!(read < 1 << 20, "{kind:?}: read {read} compressed bytes");
    }
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
fn pack_then_extract_round_trips_files_and_modes() {
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

    let (sandbox, _) = extracted(&hostile(&[
        (b"a.yaml", tar::EntryType::Regular, b"", b"kind: A"),
        (b"sub/b.yaml", tar::EntryType::Link, b"a.yaml", b""),
    ]));
    assert_eq!(
        std::fs::read_to_string(sandbox.path().join("out/sub/b.yaml")).expect("read"),
        "kind: A"
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
    for path in ["../secret.txt", "%2e%2e/secret.txt"] {
        let resp = client
            .get(format!("http://{addr}/{path}"))
            .send()
            .await
            .expect("GET");
        assert!(
            !resp.status().is_success(),
            "traversal {path} answered {}",
            resp.status()
        );
    }
    task.abort();
}
