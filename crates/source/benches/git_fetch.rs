//! Fetches a 10,000-commit repository from `git daemon` with [`git::checkout`] (shallow)
//! and with `git clone --depth 1`, and prints both times and their ratio (issue 6 target:
//! <= 1.5x). Run: `cargo bench -p ferroflux-source --bench git_fetch`.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ferroflux_source::git::{self, CloneOptions, GitRef};
use ferroflux_testpeers::GitDaemon;

const COMMITS: usize = 10_000;
const RUNS: usize = 5;

fn main() {
    let server = match GitDaemon::start() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return;
        }
    };
    let bare = server.repos().create("big").expect("create repo");
    fast_import(&bare);
    let url = server.url("big");

    let mut ours = Vec::new();
    for _ in 0..RUNS {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = Instant::now();
        let commit = git::checkout(
            &url,
            &GitRef::branch("main"),
            &dir.path().join("c"),
            &CloneOptions::default(),
        )
        .expect("checkout");
        ours.push(t.elapsed());
        assert!(commit.summary.contains(&COMMITS.to_string()));
    }
    let mut theirs = Vec::new();
    for _ in 0..RUNS {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = Instant::now();
        let ok = Command::new("git")
            .args(["clone", "-q", "--depth", "1", "--branch", "main", &url])
            .arg(dir.path().join("c"))
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "git clone failed");
        theirs.push(t.elapsed());
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (o, t) = (median(&mut ours), median(&mut theirs));
    println!(
        "git::checkout (depth 1) of {COMMITS} commits: median {:.3} s over {RUNS} runs",
        o.as_secs_f64()
    );
    println!(
        "git clone --depth 1:                       median {:.3} s over {RUNS} runs",
        t.as_secs_f64()
    );
    println!(
        "ratio = {:.2}x (target <= 1.5x)",
        o.as_secs_f64() / t.as_secs_f64()
    );
}

/// 10,000 commits on main, each rewriting one of 100 files, via `git fast-import`.
fn fast_import(bare: &std::path::Path) {
    let mut child = Command::new("git")
        .arg("-C")
        .arg(bare)
        .args(["fast-import", "--quiet"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("git fast-import");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let mut stream = Vec::new();
    for i in 1..=COMMITS {
        let msg = format!("commit {i}\n");
        let body = format!("apiVersion: v1\nkind: ConfigMap\ndata:\n  revision: \"{i}\"\n");
        write!(
            stream,
            "commit refs/heads/main\ncommitter Bench <bench@example.invalid> {} +0000\ndata {}\n{msg}M 644 inline apps/app-{:03}.yaml\ndata {}\n{body}\n",
            1_700_000_000 + i,
            msg.len(),
            i % 100,
            body.len()
        )
        .expect("write stream");
    }
    stdin.write_all(&stream).expect("feed fast-import");
    drop(stdin);
    assert!(child.wait().expect("wait").success(), "fast-import failed");
}
