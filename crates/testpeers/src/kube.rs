//! Peers built from Go modules by `scripts/peers.sh`: the real kube-apiserver (with etcd and
//! kube-controller-manager), kubectl, the flux CLI and Flux's controllers.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::PeerError;

/// `scripts/peers.sh`, found from this crate's manifest so tests run from any directory.
fn peers_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/peers.sh")
}

fn run_script(args: &[&str]) -> Result<Output, PeerError> {
    Command::new("bash")
        .arg(peers_script())
        .args(args)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .output()
        .map_err(PeerError::io(format!(
            "run scripts/peers.sh {}",
            args.join(" ")
        )))
}

/// The binary of a peer built by `scripts/peers.sh build` (`kube-apiserver`, `kubectl`, `flux`,
/// `source-controller`, ...); [`PeerError::NotBuilt`] when it is not built on this machine.
pub fn peer_binary(peer: &str) -> Result<PathBuf, PeerError> {
    let out = run_script(&["path", peer])?;
    if !out.status.success() {
        return Err(PeerError::NotBuilt { peer: peer.into() });
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// The directory of a peer's upstream Go module source (`scripts/peers.sh source`), e.g. for
/// the CRDs under `config/crd/bases` of Flux's controllers; [`PeerError::NotBuilt`] when the
/// module cannot be found on this machine.
pub fn peer_source(peer: &str) -> Result<PathBuf, PeerError> {
    let out = run_script(&["source", peer])?;
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if !out.status.success() || !dir.is_dir() {
        return Err(PeerError::NotBuilt { peer: peer.into() });
    }
    Ok(dir)
}

/// Runs the machine's `kubectl` against `kubeconfig` with `stdin` as its input (an empty one
/// without), to its end.
///
/// # Errors
/// kubectl cannot be started (not installed) or its pipes fail.
pub fn kubectl(kubeconfig: &Path, args: &[&str], stdin: Option<&[u8]>) -> std::io::Result<Output> {
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // Dropping the pipe after writing closes kubectl's input.
    if let (Some(bytes), Some(mut input)) = (stdin, child.stdin.take()) {
        input.write_all(bytes)?;
    }
    child.wait_with_output()
}

/// A real control plane on loopback: etcd, kube-apiserver (RBAC, ServiceAccount tokens, kube's
/// default admission plugins) and kube-controller-manager (garbage collection, namespace
/// deletion, service accounts; no nodes), started by `scripts/peers.sh start kube-apiserver`.
/// Dropping it stops them and deletes their directory.
pub struct KubeApiserver {
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    server: String,
}

impl KubeApiserver {
    /// Starts the control plane and waits until kube-apiserver is ready.
    pub fn start() -> Result<KubeApiserver, PeerError> {
        Self::start_with(&[])
    }

    /// Like [`KubeApiserver::start`], but kube-controller-manager runs no Deployment,
    /// ReplicaSet, StatefulSet, DaemonSet or Job controller: with no kubelet those would keep
    /// every workload unavailable and overwrite the statuses ferroflux's workload simulator
    /// writes, so the simulator plays their part as it does in `ferroflux up`.
    pub fn start_without_workload_controllers() -> Result<KubeApiserver, PeerError> {
        Self::start_with(&["--no-workload-controllers"])
    }

    fn start_with(flags: &[&str]) -> Result<KubeApiserver, PeerError> {
        for peer in ["etcd", "kube-apiserver", "kube-controller-manager"] {
            peer_binary(peer)?;
        }
        let dir = tempfile::Builder::new()
            .prefix("ferroflux-kube-apiserver-")
            .tempdir()
            .map_err(PeerError::io("create a temporary directory"))?;
        let dir_arg = dir.path().to_string_lossy().into_owned();
        let mut args = vec!["start", "kube-apiserver", dir_arg.as_str()];
        args.extend_from_slice(flags);
        let out = run_script(&args)?;
        if !out.status.success() {
            let _ = run_script(&["stop", &dir_arg]);
            return Err(PeerError::NotReady {
                name: "kube-apiserver".into(),
                port: 0,
                log_tail: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
        let kubeconfig = dir.path().join("kubeconfig");
        let text = std::fs::read_to_string(&kubeconfig)
            .map_err(PeerError::io("read the peer's kubeconfig"))?;
        let server = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("server: "))
            .map(str::to_string)
            .ok_or_else(|| PeerError::NotReady {
                name: "kube-apiserver".into(),
                port: 0,
                log_tail: "the kubeconfig names no server".into(),
            })?;
        Ok(KubeApiserver {
            dir,
            kubeconfig,
            server,
        })
    }

    /// The admin (`system:masters`) kubeconfig.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The server URL, `https://127.0.0.1:<port>`.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The directory holding the PKI (`pki/ca.crt`, `pki/ca.key`), logs and data.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for KubeApiserver {
    fn drop(&mut self) {
        let _ = run_script(&["stop", &self.dir.path().to_string_lossy()]);
    }
}
