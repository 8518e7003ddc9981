//! `helm template` (the real Helm v4, built by `scripts/peers.sh`) against ferroflux's
//! rendering of the same chart with the same flags: every chart of Helm's own module testdata
//! and the charts under `tests/charts`, byte for byte. Charts Helm refuses must be refused too.
//! Differences are held to `tests/differential/known-differences.txt`.

use std::path::{Path, PathBuf};
use std::process::Command;

use ferroflux_helm::{Capabilities, ReleaseOptions};
use ferroflux_kustomize::fs::DiskFs;
use ferroflux_testpeers::KnownFailures;

/// One `helm template` invocation: its case name, and its arguments (the chart among them).
struct Case {
    name: String,
    args: Vec<String>,
}

/// `[NAME] CHART` and the flags both sides understand.
#[derive(Default)]
struct Flags {
    positional: Vec<String>,
    values: Vec<String>,
    set: Vec<String>,
    set_string: Vec<String>,
    namespace: Option<String>,
    kube_version: Option<String>,
    api_versions: Vec<String>,
    include_crds: bool,
    show_only: Vec<String>,
}

fn parse_flags(args: &[String]) -> Flags {
    let mut f = Flags::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut next = || it.next().cloned().unwrap_or_default();
        match a.as_str() {
            "-f" | "--values" => f.values.push(next()),
            "--set" => f.set.push(next()),
            "--set-string" => f.set_string.push(next()),
            "--namespace" | "-n" => f.namespace = Some(next()),
            "--kube-version" => f.kube_version = Some(next()),
            "--api-versions" | "-a" => f.api_versions.push(next()),
            "--include-crds" => f.include_crds = true,
            "--show-only" | "-s" => f.show_only.push(next()),
            _ => f.positional.push(a.clone()),
        }
    }
    f
}

/// What ferroflux prints for `helm template ARGS`, or why it refuses.
fn ferroflux_template(args: &[String]) -> Result<String, String> {
    let f = parse_flags(args);
    let (name, chart) = match f.positional.as_slice() {
        [chart] => ("release-name".to_string(), chart.clone()),
        [name, chart] => (name.clone(), chart.clone()),
        _ => return Err("bad arguments".into()),
    };
    let path = PathBuf::from(&chart);
    let chart = if path.is_dir() {
        ferroflux_helm::load_dir(&DiskFs, &path).map_err(|e| e.to_string())?
    } else {
        let bytes = std::fs::read(&path).map_err(|e| e.to_string())?;
        ferroflux_helm::load_archive(&bytes).map_err(|e| e.to_string())?
    };
    let mut files = Vec::new();
    for v in &f.values {
        files.push((
            v.clone(),
            std::fs::read_to_string(v).map_err(|e| e.to_string())?,
        ));
    }
    let values = ferroflux_helm::template::user_values(&files, &f.set, &f.set_string)?;
    let release = ReleaseOptions {
        name,
        namespace: f.namespace.unwrap_or_else(|| "default".into()),
        revision: 1,
        is_install: true,
        is_upgrade: false,
    };
    let caps = Capabilities {
        kube_version: f.kube_version.unwrap_or_default(),
        api_versions: f.api_versions,
    };
    let rendered = ferroflux_helm::render(&chart, &values, &release, &caps, None)
        .map_err(|e| e.to_string())?;
    ferroflux_helm::template::template_output(&rendered, f.include_crds, &f.show_only)
}

/// Charts of Helm's module testdata: directories holding a `Chart.yaml` (not inside another
/// chart's `charts/`) and `.tgz` archives, by path relative to the module.
fn module_charts(module: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![module.join("pkg")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let rel = path
                .strip_prefix(module)
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            let in_testdata = rel.contains("/testdata/");
            let inside_chart = rel.contains("/charts/");
            if path.is_dir() {
                if in_testdata && !inside_chart && path.join("Chart.yaml").is_file() {
                    out.push(rel.clone());
                }
                stack.push(path);
            } else if in_testdata && !inside_chart && rel.ends_with(".tgz") {
                out.push(rel);
            }
        }
    }
    out.sort();
    out
}

fn local_cases(charts: &Path, packaged: &Path) -> Vec<Case> {
    let c = |name: &str, args: &[&str]| Case {
        name: name.to_string(),
        args: args
            .iter()
            .map(|a| a.replace("@", &charts.display().to_string()))
            .collect(),
    };
    let mut cases = vec![
        c("local/podinfo", &["@/podinfo"]),
        c(
            "local/podinfo-prod",
            &[
                "my-app",
                "@/podinfo",
                "-f",
                "@/podinfo/values-prod.yaml",
                "--set",
                "replicaCount=3,podAnnotations.team=a\\,b",
                "--set-string",
                "image.tag=6.7.1",
                "--namespace",
                "apps",
                "--include-crds",
            ],
        ),
        c(
            "local/podinfo-show-only",
            &[
                "@/podinfo",
                "--show-only",
                "templates/service.yaml",
                "--show-only",
                "charts/cache/templates/*",
            ],
        ),
        c(
            "local/podinfo-capabilities",
            &[
                "@/podinfo",
                "--kube-version",
                "1.30.2",
                "--api-versions",
                "monitoring.coreos.com/v1",
                "--set",
                "cache.enabled=false",
                "--set",
                "tags.observability=false",
                "--set",
                "extraEnv[1].name=EXTRA,extraEnv[1].value=x",
            ],
        ),
        c(
            "local/podinfo-old-kube",
            &["@/podinfo", "--kube-version", "1.20.0"],
        ),
        c("local/schema-error", &["@/schema-error"]),
        c("local/legacy-v1", &["@/legacy-v1"]),
        c(
            "local/legacy-v1-disabled",
            &["@/legacy-v1", "--set", "child.enabled=false"],
        ),
        c("local/library-only", &["@/library-only"]),
        c("local/edge", &["@/edge"]),
        c(
            "local/edge-set",
            &[
                "edge-rel",
                "@/edge",
                "--set",
                "list[3].x=1,nested.b=set,nested.c=null,child.name=override",
                "--set",
                "str=0x10,neg=-0,int=+5,escaped=a\\.b\\,c,dotted\\.key=v",
                "--set-string",
                "small=3,bool=false",
                "--kube-version",
                "v1.24",
                "--namespace",
                "edge-ns",
            ],
        ),
        c("local/required-missing", &["@/required"]),
        c("local/required-set", &["@/required", "--set", "name=given"]),
    ];
    if packaged.is_file() {
        cases.push(Case {
            name: "local/podinfo.tgz".into(),
            args: vec![packaged.display().to_string()],
        });
    }
    cases
}

/// With `FERROFLUX_HELM_DIFF_DIR` set, both outputs of a differing case are written there.
fn keep_for_inspection(name: &str, real: &[u8], ours: &str) {
    let Some(dir) = std::env::var_os("FERROFLUX_HELM_DIFF_DIR") else {
        return;
    };
    if real == ours.as_bytes() {
        return;
    }
    let base = PathBuf::from(dir).join(name.replace('/', "_"));
    let _ = std::fs::write(base.with_extension("helm"), real);
    let _ = std::fs::write(base.with_extension("ferroflux"), ours);
}

#[test]
fn helm_template_matches_the_real_helm() {
    let helm = match ferroflux_testpeers::peer_binary("helm") {
        Ok(p) => p,
        Err(e) => return ferroflux_testpeers::skip(format!("helm: {e}")),
    };
    let module = match ferroflux_testpeers::peer_source("helm") {
        Ok(p) => p,
        Err(e) => return ferroflux_testpeers::skip(format!("helm module source: {e}")),
    };
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let charts = here.join("charts");
    let tmp = tempfile::tempdir().expect("temp dir");
    let package = Command::new(&helm)
        .args(["package", "--destination"])
        .arg(tmp.path())
        .arg(charts.join("podinfo"))
        .output()
        .expect("helm package runs");
    assert!(
        package.status.success(),
        "{}",
        String::from_utf8_lossy(&package.stderr)
    );
    let packaged = tmp.path().join("podinfo-6.7.1.tgz");
    let mut cases: Vec<Case> = module_charts(&module)
        .into_iter()
        .map(|rel| Case {
            args: vec![module.join(&rel).display().to_string()],
            name: rel,
        })
        .collect();
    cases.extend(local_cases(&charts, &packaged));

    let known = KnownFailures::load(here.join("differential/known-differences.txt"))
        .expect("known-difference list");
    let (mut identical, mut different, mut refused, mut refused_only_by_helm) = (0, 0, 0, 0);
    let mut outcomes = Vec::new();
    for case in &cases {
        let real = Command::new(&helm)
            .arg("template")
            .args(&case.args)
            .env("HELM_NAMESPACE", "default")
            .env("KUBECONFIG", tmp.path().join("no-kubeconfig"))
            .output()
            .expect("helm runs");
        let ours = ferroflux_template(&case.args);
        let same = match (real.status.success(), &ours) {
            (true, Ok(text)) => {
                let same = real.stdout == text.as_bytes();
                keep_for_inspection(&case.name, &real.stdout, text);
                if same {
                    identical += 1;
                } else {
                    different += 1;
                }
                same
            }
            (true, Err(e)) => {
                different += 1;
                eprintln!("{}: ferroflux refused: {e}", case.name);
                false
            }
            (false, Ok(_)) => {
                refused_only_by_helm += 1;
                false
            }
            (false, Err(_)) => {
                refused += 1;
                true
            }
        };
        if !same {
            eprintln!("different: {}{}", case.name, known.mark(&case.name));
        }
        outcomes.push((case.name.clone(), same));
    }
    println!(
        "{identical} identical, {different} different ({refused} refused by both, {refused_only_by_helm} refused only by helm)"
    );
    let verdict = known.judge(outcomes.iter().map(|(n, ok)| (n.as_str(), *ok)));
    println!("{verdict}");
    let accepted = identical + different;
    assert!(
        accepted > 0 && identical * 100 >= accepted * 95,
        "{identical} of {accepted} charts byte-identical: below 95%"
    );
    assert!(verdict.holds(), "{verdict}");
}
