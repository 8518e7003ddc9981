//! Parses arbitrary text as a template (with Sprig and Helm's functions, so every function
//! name is known) and, when it parses, executes it under tight limits. Any panic, hang or stack
//! overflow is a bug: bad templates must come back as errors with a line and column.

#![no_main]

use std::sync::OnceLock;

use ferroflux_gotemplate::{Error, Options, Sources, Template, Value, helm_funcs};
use libfuzzer_sys::fuzz_target;

fn base() -> &'static Template {
    static BASE: OnceLock<Template> = OnceLock::new();
    BASE.get_or_init(|| {
        let mut t = Template::with_funcs(helm_funcs(&Sources::default()));
        t.options(Options {
            max_steps: 20_000,
            max_output: 1 << 20,
            ..Options::default()
        });
        t
    })
}

fn data() -> &'static Value {
    static DATA: OnceLock<Value> = OnceLock::new();
    DATA.get_or_init(|| {
        Value::from_json(&serde_json::json!({
            "Values": {"name": "web", "replicas": 3, "ratio": 1.5, "tags": ["a", "b"], "m": {"k": "v"}, "nil": null},
            "Release": {"Name": "r", "Namespace": "ns"},
            "Chart": {"Name": "c", "Version": "1.0.0"}
        }))
    })
}

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let mut t = base().clone();
    match t.parse("fuzz", text) {
        Ok(()) => {
            let _ = t.execute("fuzz", data());
        }
        Err(Error::Parse { line, .. }) => assert!(line >= 1, "parse errors carry a line"),
        Err(other) => panic!("parse returned a non-parse error: {other}"),
    }
});
