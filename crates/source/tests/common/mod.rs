//! Shared helpers for the integration tests.

#![allow(dead_code)]

use std::path::Path;

/// reqwest (inside oci-client) needs a process-wide rustls provider.
pub fn init_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Writes `files` (path, contents) under `dir`.
pub fn write_tree(dir: &Path, files: &[(&str, &str)]) {
    for (rel, body) in files {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().expect("a file path has a parent")).expect("mkdir");
        std::fs::write(p, body).expect("write file");
    }
}

/// Relative paths of the regular files under `dir`, sorted.
pub fn list_files(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).expect("read_dir") {
            let e = e.expect("entry");
            let p = e.path();
            let ft = e.file_type().expect("file type");
            if ft.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(
                    p.strip_prefix(base)
                        .expect("under base")
                        .display()
                        .to_string(),
                );
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Relative paths of the symlinks under `dir`, sorted.
pub fn list_symlinks(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).expect("read_dir") {
            let e = e.expect("entry");
            let p = e.path();
            let ft = e.file_type().expect("file type");
            if ft.is_symlink() {
                out.push(
                    p.strip_prefix(base)
                        .expect("under base")
                        .display()
                        .to_string(),
                );
            } else if ft.is_dir() {
                walk(base, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}
