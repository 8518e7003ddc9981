//! The upstream CRDs folder of `../shared/conformance` and the tools its `compare.py` needs,
//! shared by the tests that compare our CRDs with upstream's.

use std::path::PathBuf;
use std::process::Command;

/// `../shared/conformance/upstream-crds`.
pub fn upstream_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/upstream-crds")
}

/// The upstream folder and a python3 that can read YAML, or the reason the checks cannot run.
pub fn tools() -> Result<PathBuf, String> {
    let dir = upstream_dir();
    if !dir.join("compare.py").is_file() {
        return Err(format!("{} is absent", dir.display()));
    }
    match Command::new("python3").args(["-c", "import yaml"]).output() {
        Ok(out) if out.status.success() => Ok(dir),
        Ok(_) => Err("python3 has no PyYAML (apt-get install python3-yaml)".into()),
        Err(err) => Err(format!("python3 cannot run: {err}")),
    }
}
