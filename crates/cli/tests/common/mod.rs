//! Helpers shared by the CLI's end-to-end tests: free ports, child processes that are killed
//! with the test, the real tools (`kubectl`, `git`) and a running `ferroflux apiserver`.

#![allow(dead_code)] // each test binary uses a part of it

pub mod http;
pub mod process;
pub mod table;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port()
}

/// A child process killed when the test ends, even by a failed assertion.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether `tool --version`-like `probe` runs. Missing, the test is skipped with a message,
/// except under `CI=true` where a missing tool fails it.
pub fn require(tool: &str, probe: &[&str]) -> bool {
    if Command::new(tool)
        .args(probe)
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return true;
    }
    ferroflux_testpeers::skip(format!("{tool} is not installed"));
    false
}

pub fn require_kubectl() -> bool {
    require("kubectl", &["version", "--client"])
}

/// Runs kubectl against `kubeconfig`, with `stdin` as its input.
pub fn kubectl(kubeconfig: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
    ferroflux_testpeers::kubectl(kubeconfig, args, stdin).expect("kubectl runs")
}

/// Runs kubectl like [`kubectl`] and returns its stdout; fails the test when kubectl fails.
pub fn kubectl_ok(kubeconfig: &Path, args: &[&str], stdin: Option<&[u8]>) -> String {
    let output = kubectl(kubeconfig, args, stdin);
    assert!(
        output.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A temporary directory holding `files` (name, content): a kustomization or fleet to run a
/// command on.
pub fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, content) in files {
        std::fs::write(dir.path().join(name), content).expect("write");
    }
    dir
}

/// Copies the files below `from` to `to` (created).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// The status and message of an object's Ready condition (empty when it has none).
pub fn ready_condition(obj: &serde_json::Value) -> (String, String) {
    let ready = obj["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"));
    let field = |name: &str| {
        ready
            .and_then(|c| c[name].as_str())
            .unwrap_or_default()
            .to_string()
    };
    (field("status"), field("message"))
}

/// `ferroflux apiserver` on a free port with its data under `dir`; returns the process and
/// the kubeconfig once it serves.
pub fn start_apiserver(dir: &Path) -> (Killed, PathBuf) {
    let kubeconfig = dir.join("kubeconfig");
    let port = free_port();
    let server = Killed(
        Command::new(env!("CARGO_BIN_EXE_ferroflux"))
            .args(["apiserver", "--data-dir"])
            .arg(dir.join("api"))
            .args(["--listen", &format!("127.0.0.1:{port}"), "--kubeconfig-out"])
            .arg(&kubeconfig)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("apiserver starts"),
    );
    for _ in 0..200 {
        if kubeconfig.is_file() && TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return (server, kubeconfig);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("ferroflux apiserver did not serve on 127.0.0.1:{port} within 20s");
}

/// A running `ferroflux up` with the bundled fleet, killed with the test.
pub struct Up {
    pub process: Killed,
    pub kubeconfig: PathBuf,
    /// `http://127.0.0.1:PORT` of the Receivers' webhooks.
    pub receivers: String,
    pub dir: tempfile::TempDir,
}

/// Starts `ferroflux up` (its log in `<dir>/up.log`) and waits until it has bootstrapped
/// `flux-system`; `None` when git or kubectl is missing (a skip, a failure under `CI=true`).
pub fn start_up() -> Option<Up> {
    if !require("git", &["--version"]) || !require_kubectl() {
        return None;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("data");
    let receivers = format!("127.0.0.1:{}", free_port());
    let log = std::fs::File::create(dir.path().join("up.log")).expect("log file");
    let process = Killed(
        Command::new(env!("CARGO_BIN_EXE_ferroflux"))
            .args(["up", "--receiver-listen", &receivers, "--data-dir"])
            .arg(&data_dir)
            .args(["--listen", &format!("127.0.0.1:{}", free_port())])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("ferroflux up starts"),
    );
    let kubeconfig = data_dir.join("apiserver/kubeconfig");
    let bootstrapped = process::wait_for(Duration::from_secs(120), || {
        let probe = ["get", "kustomization", "flux-system", "-n", "flux-system"];
        (kubeconfig.is_file() && kubectl(&kubeconfig, &probe, None).status.success()).then_some(())
    });
    assert!(bootstrapped.is_some(), "ferroflux up did not bootstrap");
    Some(Up {
        process,
        kubeconfig,
        receivers: format!("http://{receivers}"),
        dir,
    })
}

/// `kubectl ARGS -o json`, parsed.
pub fn kubectl_json(kubeconfig: &Path, args: &[&str]) -> serde_json::Value {
    let out = kubectl_ok(kubeconfig, &[args, &["-o", "json"]].concat(), None);
    serde_json::from_str(&out).expect("kubectl prints JSON")
}

/// `git ARGS` in `dir`; its stdout, the test failing when git fails.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Commits `file` with `content` to `main` of the fleet repository of the `up` whose data dir
/// is `<dir>/data`, through a clone in `<dir>/fleet-work`; returns the new commit.
pub fn commit_to_fleet(dir: &Path, file: &str, content: &str) -> String {
    let work = dir.join("fleet-work");
    let bare = dir.join("data/git/fleet-infra.git");
    if !work.is_dir() {
        git(dir, &["clone", "-q", &bare.to_string_lossy(), "fleet-work"]);
    }
    git(&work, &["pull", "-q", "origin", "main"]);
    std::fs::write(work.join(file), content).expect("write the fleet file");
    git(&work, &["add", "."]);
    let commit = ["-c", "user.name=test", "-c", "user.email=test@localhost"];
    git(
        &work,
        &[&commit[..], &["commit", "-q", "-m", file]].concat(),
    );
    git(&work, &["push", "-q", "origin", "HEAD:main"]);
    git(&work, &["rev-parse", "HEAD"]).trim().to_string()
}
