//! Running commands to the end with their output, polling, and the conditions of objects,
//! for the pen-test suites.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::table::cut;

/// Polls `probe` every 300 ms until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = probe() {
            return Some(v);
        }
        if start.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The output of a command.
pub struct Out {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    /// `Ok` when the command succeeded, else its stderr on one line.
    pub fn result(&self) -> Result<(), String> {
        if self.ok() {
            Ok(())
        } else {
            Err(super::table::one_line(&self.stderr))
        }
    }
}

/// `kubectl apply` of a YAML stream on stdin, server-side, taking fields over from others.
pub fn ssa_apply_args(field_manager: &str) -> [String; 6] {
    [
        "apply".into(),
        "--server-side".into(),
        "--force-conflicts".into(),
        format!("--field-manager={field_manager}"),
        "-f".into(),
        "-".into(),
    ]
}

/// Runs `cmd` to the end with `stdin` as its input; a command that cannot start is an `Out`
/// without code whose stderr says why.
pub fn run(cmd: &mut Command, stdin: Option<&[u8]>) -> Out {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Out {
                code: None,
                stdout: String::new(),
                stderr: format!("cannot start {:?}: {e}", cmd.get_program()),
            };
        }
    };
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let _ = pipe.write_all(data);
    }
    match child.wait_with_output() {
        Ok(o) => Out {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        },
        Err(e) => Out {
            code: None,
            stdout: String::new(),
            stderr: e.to_string(),
        },
    }
}

/// A condition of an object, flattened.
#[derive(Default, Clone)]
pub struct Condition {
    pub status: String,
    pub reason: String,
    pub message: String,
}

impl Condition {
    pub fn of(obj: &Value, kind: &str) -> Condition {
        let c = obj["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == kind));
        match c {
            Some(c) => Condition {
                status: c["status"].as_str().unwrap_or("").into(),
                reason: c["reason"].as_str().unwrap_or("").into(),
                message: c["message"].as_str().unwrap_or("").into(),
            },
            None => Condition {
                status: "absent".into(),
                ..Condition::default()
            },
        }
    }

    pub fn summary(&self) -> String {
        if self.status.is_empty() {
            return "object missing".into();
        }
        format!(
            "{}/{}: {}",
            self.status,
            self.reason,
            cut(&self.message, 110)
        )
    }
}

/// `ferroflux ARGS` with no input.
pub fn ferroflux(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ferroflux"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("ferroflux runs")
}

/// Exit status, standard output and the error line of a `flux` or `ferroflux` run (flux
/// prints its usage too on some errors; the `✗` line is the one both print).
pub fn shown(output: &std::process::Output) -> (Option<i32>, String, String) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let error = stderr
        .lines()
        .find(|l| l.starts_with('✗'))
        .unwrap_or_default()
        .to_string();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    (output.status.code(), stdout, error)
}
