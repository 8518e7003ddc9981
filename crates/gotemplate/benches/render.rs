//! Render and parse timings with std timing only (no criterion): a ~440-line Helm-style chart
//! template over ~240 values rendered 2,000 times, 1 MiB of templates parsed, and parse+render.
//! `bench-go/` runs the same workload on Go's text/template for comparison:
//! `cargo bench -p ferroflux-gotemplate --bench render` and `cd bench-go && go run . ../benches/data`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use ferroflux_gotemplate::{Template, Value};

const CHART: &str = include_str!("data/chart.tpl");
const VALUES: &str = include_str!("data/values.json");
const RENDERS: u32 = 2_000;
const ROUNDS: u32 = 5;
const PARSE_BYTES: usize = 1 << 20;

fn per_op(total: Duration, n: u32) -> String {
    format!("{:.1} µs/op", total.as_secs_f64() * 1e6 / f64::from(n))
}

fn main() {
    let json: serde_json::Value =
        serde_json::from_str(VALUES).expect("benches/data/values.json is JSON");
    let data = Value::from_json(&json);

    let mut t = Template::new();
    t.parse("chart", CHART).expect("the chart template parses");
    let first = t
        .execute("chart", &data)
        .expect("the chart template renders");
    // Warm up allocator and caches.
    for _ in 0..50 {
        black_box(t.execute("chart", &data).expect("renders"));
    }
    // Five rounds of 400: the machine is shared, so the best round is the steadier figure.
    let mut total = Duration::ZERO;
    let mut best = Duration::MAX;
    for _ in 0..ROUNDS {
        let start = Instant::now();
        for _ in 0..RENDERS / ROUNDS {
            black_box(t.execute("chart", black_box(&data)).expect("renders"));
        }
        let round = start.elapsed();
        total += round;
        best = best.min(round);
    }
    println!(
        "render: {} lines, {} output bytes, {RENDERS} renders in {:.1} ms ({}; best round {})",
        CHART.lines().count(),
        first.len(),
        total.as_secs_f64() * 1e3,
        per_op(total, RENDERS),
        per_op(best, RENDERS / ROUNDS)
    );

    let copies = PARSE_BYTES.div_ceil(CHART.len());
    let start = Instant::now();
    for i in 0..copies {
        let mut t = Template::new();
        t.parse(&format!("chart{i}"), black_box(CHART))
            .expect("parses");
        black_box(&t);
    }
    let parse = start.elapsed();
    println!(
        "parse: {} bytes in {copies} templates in {:.1} ms ({:.1} MiB/s)",
        copies * CHART.len(),
        parse.as_secs_f64() * 1e3,
        (copies * CHART.len()) as f64 / parse.as_secs_f64() / f64::from(1u32 << 20)
    );

    let n = 100u32;
    let mut total = Duration::ZERO;
    let mut best = Duration::MAX;
    for _ in 0..ROUNDS {
        let start = Instant::now();
        for _ in 0..n {
            let mut t = Template::new();
            t.parse("chart", black_box(CHART)).expect("parses");
            black_box(t.execute("chart", &data).expect("renders"));
        }
        let round = start.elapsed();
        total += round;
        best = best.min(round);
    }
    println!(
        "parse+render: {} in {:.1} ms ({}; best round {})",
        n * ROUNDS,
        total.as_secs_f64() * 1e3,
        per_op(total, n * ROUNDS),
        per_op(best, n)
    );
}
