//! Real third-party peers on loopback for ferroflux's integration tests.
//!
//! Each peer is started on a free `127.0.0.1` port from a private temporary directory and
//! returned as a guard: dropping it kills the process and deletes the directory.
//!
//! | peer | program | Debian package |
//! |---|---|---|
//! | [`Registry`] | `docker-registry` (CNCF distribution 2.8), optional htpasswd bcrypt auth | `docker-registry` |
//! | [`GitHttp`] | `lighttpd` + `git http-backend` (CGI), push enabled, optional basic auth | `lighttpd`, `git` |
//! | [`GitDaemon`] | `git daemon` with receive-pack | `git` |
//! | [`GitSsh`] | OpenSSH `sshd`, key-only login, serving bare repositories | `openssh-server` |
//! | [`S3Server`] | moto's S3 server, optionally checking SigV4 | PyPI `moto[s3]`, `flask`, `flask-cors`, `boto3` |
//! | [`KubeApiserver`] | etcd + kube-apiserver + kube-controller-manager | Go modules, `scripts/peers.sh` |
//! | [`FaultProxy`] | a TCP proxy of this crate in front of any peer: down, slow, HTTP 500, cut mid-answer | - |
//!
//! When a program is missing, `start` returns [`PeerError::Missing`]; [`require!`] turns that
//! into an early `return` with a clear message on a developer's machine, and into a failure
//! under `CI=true` (see [`skip`]): CI installs the packages, so there a missing one is a bug.
//!
//! ```no_run
//! # fn demo() {
//! let registry = ferroflux_testpeers::require!(ferroflux_testpeers::Registry::start(None));
//! println!("push to {}", registry.host());
//! # }
//! ```

#![deny(missing_docs)]

mod git;
mod known_failures;
mod kube;
mod process;
mod prometheus;
mod proxy;
mod registry;
mod s3;
mod ssh;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use git::{GitDaemon, GitHttp, GitRepos, GitWork};
pub use known_failures::{KnownFailures, KnownFailuresError, Verdict};
pub use kube::{KubeApiserver, kubectl, peer_binary, peer_source};
pub use prometheus::{MetricsApp, Prometheus};
pub use proxy::{Fault, FaultProxy};
pub use registry::Registry;
pub use s3::S3Server;
pub use ssh::GitSsh;

/// Why a peer could not be started.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The peer's program is not installed; the test should skip.
    #[error(
        "`{program}` is not installed (install the Debian package `{package}`, as .ci/run does)"
    )]
    Missing {
        /// The program looked up on `PATH`.
        program: String,
        /// The Debian package that provides it.
        package: String,
    },
    /// A peer built from Go modules by `scripts/peers.sh` is not built on this machine.
    #[error("`{peer}` is not built (run `scripts/peers.sh build {peer}`, as ./test.sh does)")]
    NotBuilt {
        /// The peer's name in `scripts/peers.sh`.
        peer: String,
    },
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What the harness was doing.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The peer did not answer on its port in time, or exited.
    #[error("{name} did not become ready on 127.0.0.1:{port}; its log ends with:\n{log_tail}")]
    NotReady {
        /// The peer.
        name: String,
        /// Its port.
        port: u16,
        /// The last lines of its output.
        log_tail: String,
    },
    /// A `git` command used to prepare a repository failed.
    #[error("`git {args}` failed: {stderr}")]
    Git {
        /// The arguments.
        args: String,
        /// What git printed on stderr.
        stderr: String,
    },
    /// A bcrypt hash for the htpasswd file could not be made.
    #[error("bcrypt hash for the htpasswd file: {0}")]
    Bcrypt(#[from] bcrypt::BcryptError),
}

impl PeerError {
    /// True when the error only means "this machine lacks the peer": the test should skip.
    pub fn is_skip(&self) -> bool {
        matches!(self, PeerError::Missing { .. } | PeerError::NotBuilt { .. })
    }

    fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> PeerError {
        let what = what.into();
        move |source| PeerError::Io { what, source }
    }
}

/// True when the tests run in CI (`CI=true`), where every peer, tool and `../shared` file the
/// tests need is installed: a missing one is then a failure, never a skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Reports that a test cannot run here because `reason` (a missing program or file). Locally
/// it prints the reason and the caller returns (a skip); under `CI=true` it panics, so a
/// machine that lost a peer turns CI red instead of quietly running fewer tests.
pub fn skip(reason: impl std::fmt::Display) {
    if in_ci() {
        panic!("CI=true and this test cannot run: {reason}");
    }
    eprintln!("skipped: {reason}");
}

/// Unwraps a peer start result; on [`PeerError::Missing`] skips the calling test through
/// [`skip`] (a failure under `CI=true`); any other error panics with the peer's log.
#[macro_export]
macro_rules! require {
    ($start:expr) => {
        match $start {
            Ok(peer) => peer,
            Err(err) if err.is_skip() => {
                $crate::skip(err);
                return;
            }
            Err(err) => panic!("starting a test peer failed: {err}"),
        }
    };
}

/// User name and password for the basic-auth variants of the peers.
#[derive(Clone)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// User `ferroflux` with a fresh random password, so tests can check that the password
    /// never leaks into error messages.
    pub fn generate() -> Self {
        use std::hash::{BuildHasher, Hasher};
        let mut password = String::from("pw-");
        for _ in 0..2 {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or_default(),
            );
            password.push_str(&format!("{:016x}", h.finish()));
        }
        Credentials {
            username: "ferroflux".into(),
            password,
        }
    }

    fn htpasswd_line(&self) -> Result<String, PeerError> {
        // Cost 5 keeps every request's check fast; the file never leaves the test.
        let hash = bcrypt::hash(&self.password, 5)?;
        Ok(format!("{}:{}\n", self.username, hash))
    }
}

/// Locates `program` on `PATH` (and in the sbin directories, which a non-root `PATH` may
/// lack), or says which Debian package provides it.
pub fn find_program(program: &str, package: &str) -> Result<PathBuf, PeerError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let extra = ["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from);
    std::env::split_paths(&path)
        .chain(extra)
        .map(|dir| dir.join(program))
        .find(|p| is_executable(p))
        .ok_or_else(|| PeerError::Missing {
            program: program.into(),
            package: package.into(),
        })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A port that was free a moment ago on 127.0.0.1.
///
/// The listener is closed before returning, so another process may take it: peers retry
/// with a new port when they fail to become ready.
pub fn free_port() -> Result<u16, PeerError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(PeerError::io("bind 127.0.0.1:0"))?;
    let port = listener
        .local_addr()
        .map_err(PeerError::io("local_addr of a bound listener"))?
        .port();
    Ok(port)
}

/// The status code of `GET path` on 127.0.0.1:port, or `None` when nothing answers.
pub fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 64];
    let mut n = 0;
    while n < 12 {
        match stream.read(&mut head[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    let line = std::str::from_utf8(&head[..n]).ok()?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// True while something accepts TCP connections on 127.0.0.1:port.
pub fn port_open(port: u16) -> bool {
    TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    )
    .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_program_is_a_skip_that_names_the_package() {
        let err = find_program("ferroflux-no-such-program", "some-package").expect_err("absent");
        assert!(err.is_skip());
        let msg = err.to_string();
        assert!(
            msg.contains("ferroflux-no-such-program") && msg.contains("some-package"),
            "{msg}"
        );
    }

    #[test]
    fn other_errors_are_not_skips() {
        let err = PeerError::NotReady {
            name: "x".into(),
            port: 1,
            log_tail: String::new(),
        };
        assert!(!err.is_skip());
    }

    #[test]
    fn generated_passwords_differ_and_stay_out_of_debug() {
        let a = Credentials::generate();
        let b = Credentials::generate();
        assert_ne!(a.password, b.password);
        assert!(!format!("{a:?}").contains(&a.password));
    }

    #[test]
    fn http_status_of_a_closed_port_is_none() {
        let port = free_port().expect("port");
        assert_eq!(http_status(port, "/"), None);
        assert!(!port_open(port));
    }
}
