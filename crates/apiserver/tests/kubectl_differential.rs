//! The differential kubectl suite: the same kubectl (the v1.36 peer built by
//! `scripts/peers.sh`) runs the invocations of `kubectl_differential/invocations.txt`, in order,
//! against the real kube-apiserver and against ferroflux's server, each started fresh. Outputs
//! (stdout, stderr, exit code) are normalised (uids, times, ages, resourceVersions, server
//! addresses, generated names, tokens) and compared; the test prints `N identical, N different`
//! with a unified diff per difference, and fails when a difference is not in
//! `kubectl_differential/known-differences.txt` or a listed one no longer differs.
//!
//! Run: `cargo test -p ferroflux-apiserver --test kubectl_differential -- --nocapture`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use ferroflux_testpeers::{KnownFailures, KubeApiserver, peer_binary};
use regex::Regex;

/// The suite's directory: the invocation list, the manifests it applies (kubectl runs from
/// here, so paths in messages are the same on both servers) and the known differences.
fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kubectl_differential")
}

/// A kubectl process that runs longer than this is killed (every `wait` in the list has a
/// shorter `--timeout`), so one hanging request cannot stall the suite.
const INVOCATION_DEADLINE: Duration = Duration::from_secs(40);

/// Outputs longer than this many lines are compared, but diffed only up to it (the line diff
/// is quadratic).
const MAX_DIFF_LINES: usize = 3000;

struct Invocation {
    id: String,
    args: Vec<String>,
}

/// Splits an argument line on blanks; `'...'` keeps blanks and double quotes as they are.
fn split_args(line: &str) -> Result<Vec<String>, String> {
    let mut args = Vec::new();
    let mut current: Option<String> = None;
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                current.get_or_insert_with(String::new);
            }
            c if c.is_whitespace() && !quoted => {
                if let Some(arg) = current.take() {
                    args.push(arg);
                }
            }
            c => current.get_or_insert_with(String::new).push(c),
        }
    }
    if quoted {
        return Err("unterminated single quote".into());
    }
    args.extend(current);
    Ok(args)
}

fn load_invocations(path: &Path) -> Vec<Invocation> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|err| panic!("read {}: {err}", path.display()));
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = split_args(line)
            .unwrap_or_else(|err| panic!("{}:{}: {err}", path.display(), index + 1));
        let id = words.remove(0);
        assert!(
            seen.insert(id.clone()),
            "{}:{}: id {id} is used twice",
            path.display(),
            index + 1
        );
        assert!(
            !words.is_empty(),
            "{}:{}: no arguments",
            path.display(),
            index + 1
        );
        out.push(Invocation { id, args: words });
    }
    out
}

/// What one kubectl run printed, normalised.
#[derive(PartialEq)]
struct Outcome {
    stdout: String,
    stderr: String,
    exit: String,
}

impl Outcome {
    fn render(&self) -> String {
        format!(
            "exit: {}\n--- stdout\n{}--- stderr\n{}",
            self.exit, self.stdout, self.stderr
        )
    }
}

/// One server under test: its admin kubeconfig, URL and a private HOME and discovery cache, so
/// neither run sees the other's cached discovery or the machine's `~/.kube`.
struct Target {
    kubeconfig: PathBuf,
    server: String,
    home: tempfile::TempDir,
}

fn run_one(kubectl: &Path, target: &Target, inv: &Invocation) -> Outcome {
    let out_dir = target.home.path();
    let stdout_path = out_dir.join("stdout");
    let stderr_path = out_dir.join("stderr");
    let stdout = std::fs::File::create(&stdout_path).expect("create stdout file");
    let stderr = std::fs::File::create(&stderr_path).expect("create stderr file");
    let mut child = Command::new(kubectl)
        .arg("--kubeconfig")
        .arg(&target.kubeconfig)
        .args(&inv.args)
        .current_dir(suite_dir())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", out_dir)
        .env("KUBECACHEDIR", out_dir.join("cache"))
        .env("NO_PROXY", "127.0.0.1,localhost")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .expect("kubectl starts");
    let started = Instant::now();
    let exit = loop {
        match child.try_wait().expect("wait for kubectl") {
            Some(status) => break status.code().map_or("signal".into(), |c| c.to_string()),
            None if started.elapsed() > INVOCATION_DEADLINE => {
                let _ = child.kill();
                let _ = child.wait();
                break "killed after the deadline".into();
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    let read =
        |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
    Outcome {
        stdout: normalise(&read(&stdout_path), &target.server),
        stderr: normalise(&read(&stderr_path), &target.server),
        exit,
    }
}

fn run_all(kubectl: &Path, target: &Target, invocations: &[Invocation]) -> Vec<Outcome> {
    invocations
        .iter()
        .map(|inv| run_one(kubectl, target, inv))
        .collect()
}

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("the suite's patterns are valid")
}

/// What differs between two fresh servers for reasons that say nothing about compatibility,
/// each with its placeholder.
static NORMALISERS: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    vec![
        // Service-account tokens and their JWT parts.
        (
            re(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"),
            "<token>",
        ),
        (
            re(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),
            "<uid>",
        ),
        // RFC 3339 times (metadata, managedFields, conditions, events).
        (
            re(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})"),
            "<time>",
        ),
        // describe's times, and the times in `kubectl diff`'s headers.
        (
            re(r"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}"),
            "<time>",
        ),
        (
            re(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d+)? [+-]\d{4}"),
            "<time>",
        ),
        (re(r#"(resourceVersion"?:\s*)"?\d+"?"#), "${1}<rv>"),
        (re(r"(resourceVersion=)\d+"), "${1}<rv>"),
        (re(r"(Resource Version:\s+)\d+"), "${1}<rv>"),
        (re(r"https://127\.0\.0\.1:\d+"), "<server>"),
        (re(r"127\.0\.0\.1:\d+"), "<host>"),
        // Random suffixes of generated names.
        (re(r"(kube-api-access-|gen-)[a-z0-9]{5}\b"), "${1}<suffix>"),
        (re(r"/tmp/(LIVE|MERGED)-\d+"), "/tmp/${1}-<n>"),
        // Ages and durations in table cells ("5s", "2m10s", "3d").
        (
            re(r"(^|[ \t(])\d+[smhd](\d+[smh])?([ \t),]|$)"),
            "${1}<age>${3}",
        ),
    ]
});

fn normalise(text: &str, server: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in bullets_sorted(text) {
        let mut line = line.replace(server, "<server>");
        for (pattern, with) in NORMALISERS.iter() {
            line = pattern.replace_all(&line, *with).into_owned();
        }
        // Column widths follow the widths of the normalised cells: compare cells, not padding.
        let mut collapsed = String::with_capacity(line.len());
        let mut blanks = 0;
        for c in line.trim_end().chars() {
            if c == ' ' {
                blanks += 1;
                continue;
            }
            if blanks > 0 {
                collapsed.push_str(if blanks > 1 { "  " } else { " " });
                blanks = 0;
            }
            collapsed.push(c);
        }
        out.push_str(&collapsed);
        out.push('\n');
    }
    out
}

/// The lines of `text` with each run of `* ` bullets sorted: kube-apiserver lists the causes of
/// an invalid custom object in the order it walks the schema's properties, a Go map's random
/// order, so only the set of causes is comparable.
fn bullets_sorted(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.lines().collect();
    let mut start = 0;
    while start < lines.len() {
        let end = start
            + lines[start..]
                .iter()
                .take_while(|l| l.starts_with("* "))
                .count();
        lines[start..end].sort_unstable();
        start = end.max(start + 1);
    }
    lines
}

/// A unified diff of two texts, `real` as the old side, with 3 lines of context.
fn unified_diff(real: &str, ours: &str) -> String {
    let a: Vec<&str> = real.lines().take(MAX_DIFF_LINES).collect();
    let b: Vec<&str> = ours.lines().take(MAX_DIFF_LINES).collect();
    // Longest common subsequence table, from the ends.
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    // The edit script: (tag, line) with ' ', '-' or '+'.
    let mut ops: Vec<(char, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(('-', a[i]));
            i += 1;
        } else {
            ops.push(('+', b[j]));
            j += 1;
        }
    }
    const CONTEXT: usize = 3;
    let mut out = String::from("--- kube-apiserver\n+++ ferroflux\n");
    let changed: Vec<usize> = (0..ops.len()).filter(|&k| ops[k].0 != ' ').collect();
    let mut k = 0;
    while k < changed.len() {
        let start = changed[k].saturating_sub(CONTEXT);
        let mut end = (changed[k] + CONTEXT + 1).min(ops.len());
        while k + 1 < changed.len() && changed[k + 1] <= end + CONTEXT {
            k += 1;
            end = (changed[k] + CONTEXT + 1).min(ops.len());
        }
        let old_start = ops[..start].iter().filter(|o| o.0 != '+').count() + 1;
        let new_start = ops[..start].iter().filter(|o| o.0 != '-').count() + 1;
        let old_len = ops[start..end].iter().filter(|o| o.0 != '+').count();
        let new_len = ops[start..end].iter().filter(|o| o.0 != '-').count();
        out.push_str(&format!(
            "@@ -{old_start},{old_len} +{new_start},{new_len} @@\n"
        ));
        for (tag, line) in &ops[start..end] {
            out.push_str(&format!("{tag}{line}\n"));
        }
        k += 1;
    }
    out
}

#[test]
fn kubectl_prints_the_same_against_ferroflux_as_against_kube_apiserver() {
    let kubectl = ferroflux_testpeers::require!(peer_binary("kubectl"));
    let dir = suite_dir();
    let invocations = load_invocations(&dir.join("invocations.txt"));
    let known = KnownFailures::load(dir.join("known-differences.txt"))
        .unwrap_or_else(|err| panic!("{err}"));
    let started = Instant::now();

    // The real control plane without workload controllers: ferroflux's server runs none
    // either, so Deployments and Jobs stay as written on both.
    let real_start = std::thread::spawn(KubeApiserver::start_without_workload_controllers);
    let data = tempfile::tempdir().expect("tempdir");
    let ours_server = common::ThreadServer::start(&data.path().join("data"));
    let real_server = ferroflux_testpeers::require!(real_start.join().expect("start thread"));
    let target = |kubeconfig: &Path, server: &str| Target {
        kubeconfig: kubeconfig.to_path_buf(),
        server: server.to_string(),
        home: tempfile::tempdir().expect("tempdir"),
    };
    let real = target(real_server.kubeconfig(), real_server.server());
    let ours = target(&ours_server.kubeconfig, &ours_server.url);

    let (real_out, ours_out) = std::thread::scope(|s| {
        let real_run = s.spawn(|| run_all(&kubectl, &real, &invocations));
        let ours_out = run_all(&kubectl, &ours, &invocations);
        (real_run.join().expect("real run"), ours_out)
    });

    let mut identical = 0;
    let mut failing_on_both = 0;
    let mut report = String::new();
    let mut outcomes = Vec::new();
    for ((inv, r), o) in invocations.iter().zip(&real_out).zip(&ours_out) {
        let same = r == o;
        outcomes.push((inv.id.as_str(), same));
        if same {
            identical += 1;
            failing_on_both += usize::from(r.exit != "0");
            continue;
        }
        report.push_str(&format!(
            "\n=== {}{}: kubectl {}\n{}",
            inv.id,
            known.mark(&inv.id),
            inv.args.join(" "),
            unified_diff(&r.render(), &o.render())
        ));
    }
    let verdict = known.judge(outcomes);
    println!("{report}");
    println!(
        "{identical} identical ({failing_on_both} of them errors on both), {} different ({} invocations in {:.0?})",
        invocations.len() - identical,
        invocations.len(),
        started.elapsed()
    );
    println!("{verdict}");
    assert!(
        verdict.holds(),
        "the differences disagree with the known-differences list (see above)"
    );
}

#[test]
fn normalising_hides_what_two_fresh_servers_may_differ_in_and_nothing_else() {
    let server = "https://127.0.0.1:40123";
    let text = "uid: 0f8fad5b-d9cb-469f-a165-70867728950e\n\
        creationTimestamp: \"2026-12-07T03:40:00Z\"\n\
        resourceVersion: \"812\"\n\
        web    2/2     2            2           5s\n\
        The connection to https://127.0.0.1:40123 was refused\n\
        name: kube-api-access-x7k2p\n\
        size: small\n";
    assert_eq!(
        normalise(text, server),
        "uid: <uid>\n\
        creationTimestamp: \"<time>\"\n\
        resourceVersion: <rv>\n\
        web  2/2  2  2  <age>\n\
        The connection to <server> was refused\n\
        name: kube-api-access-<suffix>\n\
        size: small\n"
    );
}

#[test]
fn the_causes_of_an_invalid_object_compare_in_any_order() {
    let real = "The Widget \"bad\" is invalid:\n* spec.size: x\n* spec.color: y\nafter\n* b\n* a\n";
    let ours = "The Widget \"bad\" is invalid:\n* spec.color: y\n* spec.size: x\nafter\n* a\n* b\n";
    assert_eq!(normalise(real, ""), normalise(ours, ""));
    assert_ne!(normalise(real, ""), normalise("* spec.color: z\n", ""));
}

#[test]
fn the_diff_shows_changed_lines_with_context() {
    let diff = unified_diff("a\nb\nc\nd\ne\nf\ng\nh\n", "a\nb\nc\nd\nE\nf\ng\nh\n");
    assert_eq!(
        diff,
        "--- kube-apiserver\n+++ ferroflux\n@@ -2,7 +2,7 @@\n b\n c\n d\n-e\n+E\n f\n g\n h\n"
    );
}

#[test]
fn arguments_split_on_blanks_and_single_quotes_keep_them() {
    assert_eq!(
        split_args(r#"get x '-o=jsonpath={" "}' -n demo"#).expect("valid"),
        ["get", "x", r#"-o=jsonpath={" "}"#, "-n", "demo"]
    );
    assert!(split_args("get 'x").is_err());
}
