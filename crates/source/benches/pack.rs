//! Packs a 50 MB / 5,000-file tree with `pack_dir` and with `tar czf`, and prints both
//! times and their ratio (issue 6 target: <= 1.2x). Run: `cargo bench -p ferroflux-source`.

use std::path::Path;
use std::time::{Duration, Instant};

use ferroflux_source::artifact::{IgnoreRules, pack_dir};

const FILES: usize = 5_000;
const FILE_SIZE: usize = 10_000;
const RUNS: usize = 3;

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = dir.path().join("tree");
    make_tree(&tree);
    let out = dir.path().join("out.tar.gz");

    let mut ours = Vec::new();
    let mut digest = String::new();
    let mut size = 0;
    for _ in 0..RUNS {
        let t = Instant::now();
        let file = std::fs::File::create(&out).expect("create output");
        let packed = pack_dir(&tree, &IgnoreRules::flux_defaults(), file).expect("pack");
        ours.push(t.elapsed());
        digest = packed.digest;
        size = packed.size;
    }

    let mut tar = Vec::new();
    let mut tar_size = 0;
    for _ in 0..RUNS {
        let t = Instant::now();
        let status = std::process::Command::new("tar")
            .arg("czf")
            .arg(&out)
            .arg("-C")
            .arg(&tree)
            .arg(".")
            .status();
        match status {
            Ok(s) if s.success() => tar.push(t.elapsed()),
            other => {
                eprintln!("tar czf unavailable ({other:?}); only our figure is printed");
                break;
            }
        }
        tar_size = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    }

    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let ours_m = median(&mut ours);
    println!(
        "pack_dir: {FILES} files, {} MB in: median {:.3} s over {RUNS} runs, {size} bytes out, {digest}",
        FILES * FILE_SIZE / 1_000_000,
        ours_m.as_secs_f64()
    );
    if !tar.is_empty() {
        let tar_m = median(&mut tar);
        println!(
            "tar czf:  median {:.3} s over {} runs, {tar_size} bytes out",
            tar_m.as_secs_f64(),
            tar.len()
        );
        println!(
            "ratio pack_dir / tar czf = {:.2}x (target <= 1.2x)",
            ours_m.as_secs_f64() / tar_m.as_secs_f64()
        );
    }
}

/// 5,000 YAML-like files of 10 kB in 50 directories: compressible but not uniform.
fn make_tree(root: &Path) {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..FILES {
        let dir = root.join(format!("apps/team-{:02}", i % 50));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let mut body = String::with_capacity(FILE_SIZE + 64);
        while body.len() < FILE_SIZE {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            body.push_str(&format!("key-{}: value-{:x}\n", state % 97, state));
        }
        body.truncate(FILE_SIZE);
        std::fs::write(dir.join(format!("resource-{i:05}.yaml")), body).expect("write");
    }
}
