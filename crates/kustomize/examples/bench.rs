//! Benchmark: times `kustomize build` of a tree against the floor (reading and re-printing
//! the same output with our YAML layer). Usage: `bench DIR [RUNS]`; build trees with
//! `../shared/bench/gen-overlay.py`. Prints the best of RUNS for each.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ferroflux_kustomize::fs::DiskFs;
use ferroflux_kustomize::yaml::{parse_documents, to_yaml_stream};
use ferroflux_kustomize::{Options, build};

fn best(runs: usize, mut f: impl FnMut()) -> Duration {
    (0..runs.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| ".".into()));
    let runs: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(5);
    let out = match build(&DiskFs, &dir, Options::default()) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("build failed: {e}");
            std::process::exit(1);
        }
    };
    let docs = out.matches("\n---\n").count() + 1;
    let t_build = best(runs, || {
        let _ = build(&DiskFs, &dir, Options::default());
    });
    let t_floor = best(runs, || {
        let v = parse_documents(&out).unwrap_or_default();
        let _ = to_yaml_stream(v.iter());
    });
    println!(
        "{} resources: build {:.1} ms, floor (parse + print) {:.1} ms, ratio {:.2}",
        docs,
        t_build.as_secs_f64() * 1e3,
        t_floor.as_secs_f64() * 1e3,
        t_build.as_secs_f64() / t_floor.as_secs_f64().max(1e-9)
    );
}
