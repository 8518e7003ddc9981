//! Properties over many generated inputs (a small deterministic generator, no extra crates):
//! no panics on any input, and the parsers agree with each other and with `Display`.

use ferroflux_semver::{Constraints, Version};

struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        let i = (self.next() % items.len() as u64) as usize;
        items[i]
    }

    /// Strings built from the pieces versions and constraints are made of, plus noise.
    fn text(&mut self, pieces: &[&str]) -> String {
        let len = self.next() % 9;
        (0..len).map(|_| self.pick(pieces)).collect()
    }
}

const VERSION_PIECES: &[&str] = &[
    "0",
    "1",
    "2",
    "10",
    "01",
    "99999999999999999999",
    ".",
    ".",
    "-",
    "+",
    "v",
    "alpha",
    "rc",
    "x",
    "*",
    "-0",
    ".1",
    "é",
    " ",
    "\n",
    "_",
    "beta.2",
];
const CONSTRAINT_PIECES: &[&str] = &[
    "1", "2.3", ".4", "x", "X", "*", "v", ">", "<", "=", "!", "~", "^", ">=", "<=", "!=", "~>",
    " ", ",", "||", " - ", "-rc.1", "+meta", "|", "01", "a",
];

#[test]
fn version_parsers_agree_and_round_trip() {
    let mut g = Gen(0x2545_f491_4f6c_dd1d);
    for _ in 0..50_000 {
        let s = g.text(VERSION_PIECES);
        let loose = Version::parse(&s);
        if let Ok(strict) = Version::parse_strict(&s) {
            let loose = loose
                .as_ref()
                .unwrap_or_else(|e| panic!("{s:?}: strict ok, coercing failed: {e}"));
            assert_eq!(&strict, loose, "{s:?}");
            assert_eq!(strict.to_string(), s, "strict versions print as written");
        }
        if let Ok(v) = loose {
            let again = Version::parse_strict(&v.to_string())
                .unwrap_or_else(|e| panic!("{s:?} printed as {v} does not re-parse strictly: {e}"));
            assert_eq!(again, v, "{s:?}");
            assert_eq!(again.metadata(), v.metadata(), "{s:?}");
        }
    }
}

#[test]
fn ordering_is_total_and_consistent() {
    let mut g = Gen(0x9e37_79b9_7f4a_7c15);
    let mut versions = Vec::new();
    while versions.len() < 300 {
        if let Ok(v) = Version::parse(&g.text(VERSION_PIECES)) {
            versions.push(v);
        }
    }
    for a in &versions {
        for b in &versions {
            assert_eq!(a.cmp(b), b.cmp(a).reverse(), "{a} vs {b}");
            assert_eq!(a == b, a.cmp(b).is_eq(), "{a} vs {b}");
        }
    }
    let mut sorted = versions.clone();
    sorted.sort();
    for w in sorted.windows(2) {
        assert!(w[0] <= w[1]);
    }
}

#[test]
fn constraints_never_panic() {
    let mut g = Gen(0xdead_beef_cafe_f00d);
    let probes: Vec<Version> = ["0.0.0", "1.2.3", "1.2.3-rc.1", "2.0.0", "10.4.1-0"]
        .iter()
        .map(|s| Version::parse(s).expect("valid probe"))
        .collect();
    let mut parsed = 0;
    for _ in 0..30_000 {
        let s = g.text(CONSTRAINT_PIECES);
        if let Ok(c) = Constraints::parse(&s) {
            parsed += 1;
            for v in &probes {
                let plain = c.check(v);
                let with_pre = c.clone().with_include_prerelease(true).check(v);
                // Including pre-releases only ever adds matches.
                assert!(!plain || with_pre, "{s:?} on {v}");
                if v.prerelease().is_empty() {
                    assert_eq!(plain, with_pre, "{s:?} on release {v}");
                }
            }
        }
    }
    assert!(
        parsed > 1_000,
        "the generator should hit valid constraints ({parsed})"
    );
}
