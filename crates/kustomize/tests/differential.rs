//! Differential test: every fixture under `tests/fixtures/` is built by us and by the
//! machine's `kubectl kustomize` (upstream kustomize), and the outputs must be identical.
//! Skips, saying so, when `kubectl` is not installed.

use std::path::PathBuf;
use std::process::Command;

use ferroflux_kustomize::fs::DiskFs;
use ferroflux_kustomize::{Options, build};

#[test]
fn fixtures_build_exactly_like_kubectl_kustomize() {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    if Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_err()
    {
        ferroflux_testpeers::skip("kubectl is not installed");
        return;
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&fixtures)
        .expect("the fixtures folder is part of the crate")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty(), "no fixtures found");
    let mut failures = Vec::new();
    for dir in &dirs {
        let target = std::fs::read_to_string(dir.join("target")).unwrap_or_else(|_| ".".into());
        let root = dir.join(target.trim());
        let upstream = Command::new("kubectl")
            .arg("kustomize")
            .arg(&root)
            .output()
            .expect("kubectl runs");
        let ours = build(&DiskFs, &root, Options::default());
        let name = dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        match (upstream.status.success(), ours) {
            (true, Ok(out)) => {
                let expected = String::from_utf8_lossy(&upstream.stdout);
                if out != expected {
                    let line = expected
                        .lines()
                        .zip(out.lines())
                        .position(|(a, b)| a != b)
                        .unwrap_or(0);
                    failures.push(format!("{name}: output differs from line {}", line + 1));
                }
            }
            (false, Err(_)) => {}
            (true, Err(e)) => failures.push(format!("{name}: we failed: {e}")),
            (false, Ok(_)) => failures.push(format!(
                "{name}: kubectl failed but we built: {}",
                String::from_utf8_lossy(&upstream.stderr)
            )),
        }
    }
    eprintln!(
        "{} passed, {} failed",
        dirs.len() - failures.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
