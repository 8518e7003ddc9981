//! Setter rewrites over 5,000 in-memory YAML files (the text half of issue 8's "one
//! automation over a repo with 5,000 YAML files"; file I/O and git are not measured here).
//! Run: `cargo bench -p ferroflux-image --bench setters`.

use std::hint::black_box;
use std::time::Instant;

use ferroflux_image::setters::{LatestImage, Setters, may_have_markers, rewrite};

const FILES: usize = 5_000;

fn file(i: usize, every: usize) -> String {
    let marker = if i.is_multiple_of(every) {
        r#" # {"$imagepolicy": "team-a:podinfo"}"#
    } else {
        ""
    };
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{i}\n  namespace: team-a\n  labels:\n    app: app-{i}\nspec:\n  replicas: 2\n  selector:\n    matchLabels:\n      app: app-{i}\n  template:\n    metadata:\n      labels:\n        app: app-{i}\n    spec:\n      containers:\n      - name: app\n        image: registry.example.com/team-a/podinfo:main-abc123-1718000000{marker}\n        ports:\n        - containerPort: 9898\n        resources:\n          limits: {{cpu: 100m, memory: 64Mi}}\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: app-{i}\nspec:\n  ports:\n  - port: 80\n    targetPort: 9898\n"
    )
}

fn main() {
    let files: Vec<String> = (0..FILES).map(|i| file(i, 10)).collect();
    let all_marked: Vec<String> = (0..FILES).map(|i| file(i, 1)).collect();
    let bytes: usize = files.iter().map(String::len).sum();
    let latest = LatestImage {
        name: "registry.example.com/team-a/podinfo".to_string(),
        tag: "main-def456-1718000100".to_string(),
        digest: None,
    };
    let setters = Setters::from_policies([("team-a:podinfo", &latest)]);
    let mut best = f64::MAX;
    let mut changed = 0;
    for _ in 0..5 {
        let start = Instant::now();
        changed = 0;
        for (i, text) in files.iter().enumerate() {
            if !may_have_markers(text) {
                continue;
            }
            let out = rewrite(&format!("f{i}.yaml"), text, &setters).expect("valid YAML");
            changed += out.changes.len();
            black_box(out);
        }
        best = best.min(start.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "{FILES} files ({:.1} MiB, 1 in 10 marked): best {best:.2} ms, {changed} changes",
        bytes as f64 / (1 << 20) as f64
    );
    let start = Instant::now();
    let mut changed = 0;
    for text in &all_marked {
        changed += black_box(rewrite("f.yaml", text, &setters).expect("valid YAML"))
            .changes
            .len();
    }
    println!(
        "{FILES} files, every one marked and parsed: {:.2} ms, {changed} changes",
        start.elapsed().as_secs_f64() * 1e3
    );
}
