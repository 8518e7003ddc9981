//! A child process that dies with its guard.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::PeerError;

const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running peer process; killed and reaped on drop.
pub(crate) struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    /// Starts `cmd` with stdout and stderr going to `log`.
    pub(crate) fn spawn(name: &str, mut cmd: Command, log: &Path) -> Result<Proc, PeerError> {
        let out = std::fs::File::create(log)
            .map_err(PeerError::io(format!("create log {}", log.display())))?;
        let err = out
            .try_clone()
            .map_err(PeerError::io("duplicate the log file handle"))?;
        // The peers must never be reached through a proxy from the environment.
        cmd.env("NO_PROXY", "127.0.0.1,localhost")
            .env_remove("http_proxy")
            .env_remove("https_proxy")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = cmd
            .spawn()
            .map_err(PeerError::io(format!("start {name}")))?;
        Ok(Proc {
            name: name.into(),
            child,
            log: log.into(),
        })
    }

    /// Polls `ready` until it holds; fails when the process exits or after 30 s.
    pub(crate) fn wait_ready(
        &mut self,
        port: u16,
        mut ready: impl FnMut() -> bool,
    ) -> Result<(), PeerError> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if ready() {
                return Ok(());
            }
            let exited = matches!(self.child.try_wait(), Ok(Some(_)));
            if exited || Instant::now() > deadline {
                return Err(PeerError::NotReady {
                    name: self.name.clone(),
                    port,
                    log_tail: self.log_tail(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Tries `start` with up to three fresh ports: a free port can be taken between the probe
/// and the peer's bind.
pub(crate) fn with_port_retries<T>(
    mut start: impl FnMut(u16) -> Result<T, PeerError>,
) -> Result<T, PeerError> {
    let mut last = None;
    for _ in 0..3 {
        match start(crate::free_port()?) {
            Ok(peer) => return Ok(peer),
            Err(err @ PeerError::NotReady { .. }) => last = Some(err),
            Err(err) => return Err(err),
        }
    }
    Err(last.expect("the loop ran at least once and only NotReady continues it"))
}
