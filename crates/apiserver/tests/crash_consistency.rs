//! Crash consistency of the store: a writer process is killed (`SIGKILL`) at random points of a
//! long batch of creates, updates, deletes and compactions, many times over the same database.
//! After every kill the reopened log must be sound (`Store::check_log`), hold every write the
//! writer acknowledged, and equal the state after some prefix of the batch: never a write
//! without the ones before it, never half a write.
//!
//! The writer runs in a child process: this test binary re-executed with only `child_writer`
//! selected and `FFA_CRASH_DB` set. The random kill points come from a seed printed by the test
//! (`FFA_CRASH_SEED` replays one).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use ferroflux_apiserver::store::{Durability, Store};
use serde_json::json;

const DB: &str = "FFA_CRASH_DB";
const MODE: &str = "FFA_CRASH_MODE";
const KEYS: u64 = 37;
const PREFIX: &str = "/registry/core/configmaps/crash/";

/// What op `n` of the batch does, given whether its key is live before it.
#[derive(Debug, PartialEq)]
enum Op {
    Create,
    Update,
    Delete,
}

fn key(n: u64) -> String {
    format!("{PREFIX}k{}", (n * 7919) % KEYS)
}

fn op(n: u64, live: bool) -> Op {
    match (live, n % 4) {
        (false, _) => Op::Create,
        (true, 0) => Op::Delete,
        (true, _) => Op::Update,
    }
}

fn object(n: u64) -> serde_json::Value {
    // A value of some size, so that a write spans more than one page now and then.
    json!({"metadata": {"name": format!("k{}", (n * 7919) % KEYS)},
           "data": {"n": n.to_string(), "pad": "x".repeat((n % 13 * 700) as usize)}})
}

/// Not a test of its own: the writer of the child process (a no-op otherwise). Every op's
/// number is printed once the store acknowledged it; op `n` writes revision `n + 1`.
#[test]
fn child_writer() {
    let Ok(db) = std::env::var(DB) else { return };
    let durability = match std::env::var(MODE).as_deref() {
        Ok("strict") => Durability::Strict,
        _ => Durability::Normal,
    };
    let store = Store::open_with(Path::new(&db), durability).expect("open");
    let mut out = std::io::stdout().lock();
    let start = store.revision() as u64;
    for n in start..start + 1_000_000 {
        let k = key(n);
        let done = match op(n, store.get(&k).is_some()) {
            Op::Create => store.put(&k, object(n), true, None).map(|_| ()),
            Op::Update => store.put(&k, object(n), false, None).map(|_| ()),
            Op::Delete => store.delete(&k, None).map(|_| ()),
        };
        done.expect("write");
        writeln!(out, "{n}").expect("stdout");
        out.flush().expect("stdout");
        if n % 64 == 63 {
            store.compact(32).expect("compact");
        }
    }
}

/// The live objects after ops `0..revision`: key -> the op that wrote it last.
fn model(revision: u64) -> BTreeMap<String, u64> {
    let mut live = BTreeMap::new();
    for n in 0..revision {
        let k = key(n);
        match op(n, live.contains_key(&k)) {
            Op::Delete => {
                live.remove(&k);
            }
            Op::Create | Op::Update => {
                live.insert(k, n);
            }
        }
    }
    live
}

/// xorshift64*: enough randomness for kill points, and replayable from the printed seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// Runs the writer until it has acknowledged `acks` ops, sleeps `extra_us` so that the kill lands
/// inside a later write more often than between two, kills it, and returns the last op the
/// writer acknowledged (including acknowledgements still in the pipe), if any.
fn run_and_kill(db: &Path, mode: &str, acks: u64, extra_us: u64) -> Option<u64> {
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args(["child_writer", "--exact", "--nocapture", "--test-threads=1"])
        .env(DB, db)
        .env(MODE, mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("writer starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut last = None;
    let mut seen = 0;
    while seen < acks {
        let Some(Ok(line)) = lines.next() else { break };
        if let Ok(n) = line.trim().parse::<u64>() {
            last = Some(n);
            seen += 1;
        }
    }
    std::thread::sleep(Duration::from_micros(extra_us));
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    // Acknowledgements written before the kill are still in the pipe: they count.
    for line in lines.map_while(Result::ok) {
        if let Ok(n) = line.trim().parse::<u64>() {
            last = Some(n);
        }
    }
    last
}

fn crash_many_times(mode: &str, iterations: u32) {
    let seed = std::env::var("FFA_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
                | 1
        });
    println!("durability {mode}, FFA_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("state.db");
    let mut acknowledged: Option<u64> = None;
    for i in 0..iterations {
        let acks = 1 + rng.below(150);
        let extra_us = rng.below(3_000);
        if let Some(n) = run_and_kill(&db, mode, acks, extra_us) {
            acknowledged = Some(n);
        }
        let store = Store::open(&db).expect("the log opens after a kill");
        let problems = store.check_log().expect("check the log");
        assert!(problems.is_empty(), "iteration {i}: {problems:?}");
        let revision = store.revision() as u64;
        if let Some(n) = acknowledged {
            assert!(
                revision > n,
                "iteration {i}: op {n} was acknowledged but the log ends at revision {revision}"
            );
        }
        let (_, items) = store.list(PREFIX);
        let stored: BTreeMap<String, (u64, u64)> = items
            .into_iter()
            .map(|(k, s)| {
                let obj = s.obj();
                let n = obj["data"]["n"]
                    .as_str()
                    .and_then(|n| n.parse().ok())
                    .expect("data.n");
                (k, (n, s.rev as u64))
            })
            .collect();
        let expected: BTreeMap<String, (u64, u64)> = model(revision)
            .into_iter()
            .map(|(k, n)| (k, (n, n + 1)))
            .collect();
        assert_eq!(
            stored, expected,
            "iteration {i}: the store is not the state after the first {revision} ops"
        );
    }
    assert!(
        acknowledged.is_some_and(|n| n > u64::from(iterations)),
        "the writer made progress across kills: {acknowledged:?}"
    );
}

#[test]
fn strict_store_survives_kills_mid_batch() {
    crash_many_times("strict", 60);
}

#[test]
fn normal_store_survives_kills_mid_batch() {
    crash_many_times("normal", 60);
}
