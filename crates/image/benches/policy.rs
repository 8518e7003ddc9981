//! Policy selection over 100,000 tags (issue 8 target: under 20 ms).
//! Run: `cargo bench -p ferroflux-image --bench policy`. Prints the best and median of 21 runs.

use std::hint::black_box;
use std::time::{Duration, Instant};

use ferroflux_image::policy::{
    FilterTagsSpec, OrderSpec, Policer, PolicySpec, SemVerSpec, TagFilter, select_with,
};

const TAGS: usize = 100_000;
const RUNS: usize = 21;

/// A deterministic registry-like mix: releases, `v` releases, release candidates, CI builds.
fn tags() -> Vec<String> {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    (0..TAGS)
        .map(|i| {
            let r = next();
            let (major, minor, patch) = (r % 40, (r >> 8) % 100, (r >> 16) % 100);
            match i % 5 {
                0 | 1 => format!("{major}.{minor}.{patch}"),
                2 => format!("v{major}.{minor}.{patch}"),
                3 => format!("{major}.{minor}.{patch}-rc.{}", (r >> 24) % 10),
                _ => format!(
                    "main-{:07x}-{}",
                    (r >> 20) & 0xfff_ffff,
                    1_700_000_000 + (r >> 32) % 10_000_000
                ),
            }
        })
        .collect()
}

fn measure(label: &str, mut f: impl FnMut() -> String) {
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            black_box(f());
            start.elapsed()
        })
        .collect();
    times.sort();
    println!(
        "{label:<55} best {:>7.2} ms  median {:>7.2} ms  -> {}",
        times[0].as_secs_f64() * 1e3,
        times[RUNS / 2].as_secs_f64() * 1e3,
        f()
    );
}

fn main() {
    let tags = tags();
    let semver = Policer::from_spec(&PolicySpec {
        semver: Some(SemVerSpec {
            range: ">=1.0.0 <30.0.0".to_string(),
        }),
        ..PolicySpec::default()
    })
    .expect("valid range");
    let numerical = Policer::from_spec(&PolicySpec {
        numerical: Some(OrderSpec::default()),
        ..PolicySpec::default()
    })
    .expect("valid order");
    let alphabetical = Policer::from_spec(&PolicySpec {
        alphabetical: Some(OrderSpec::default()),
        ..PolicySpec::default()
    })
    .expect("valid order");
    let ts_filter = TagFilter::new(&FilterTagsSpec {
        pattern: r"^main-[a-f0-9]+-(?P<ts>[0-9]+)$".to_string(),
        extract: "$ts".to_string(),
    })
    .expect("valid pattern");
    let semver_filter = TagFilter::new(&FilterTagsSpec {
        pattern: r"^v?(?P<v>[0-9]+\.[0-9]+\.[0-9]+)$".to_string(),
        extract: "$v".to_string(),
    })
    .expect("valid pattern");

    println!("{TAGS} tags, {RUNS} runs each");
    measure("semver >=1.0.0 <30.0.0", || {
        select_with(&semver, None, &tags).expect("a match")
    });
    measure("alphabetical asc", || {
        select_with(&alphabetical, None, &tags).expect("a match")
    });
    measure(
        "numerical asc, filterTags main-<sha>-(?P<ts>) extract $ts",
        || select_with(&numerical, Some(&ts_filter), &tags).expect("a match"),
    );
    measure("TagFilter::apply alone (unique, sorted values)", || {
        semver_filter.apply(&tags).len().to_string()
    });
    measure("semver, filterTags ^v?(?P<v>X.Y.Z)$ extract $v", || {
        select_with(&semver, Some(&semver_filter), &tags).expect("a match")
    });
}
