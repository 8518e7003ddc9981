//! The public API a HelmRelease controller calls: loading (directory and archive, with the
//! bounds untrusted charts need), values as Helm coalesces them, hooks, notes and CRDs.

use std::io::Write;
use std::path::Path;

use ferroflux_helm::{Capabilities, LoadError, ReleaseOptions, load_archive, load_dir, render};
use ferroflux_kustomize::fs::MemFs;
use serde_json::json;

fn release() -> ReleaseOptions {
    ReleaseOptions {
        name: "rel".into(),
        namespace: "apps".into(),
        revision: 3,
        is_install: false,
        is_upgrade: true,
    }
}

fn umbrella() -> MemFs {
    let mut fs = MemFs::new();
    fs.add(
        "c/Chart.yaml",
        "apiVersion: v2\nname: top\nversion: 1.0.0\ndependencies:\n- name: sub\n  version: 0.1.0\n  condition: sub.enabled\n- name: sub\n  version: 0.1.0\n  alias: other\n",
    )
    .add("c/.helmignore", "*.skip\n")
    .add("c/notes.skip", "ignored")
    .add(
        "c/values.yaml",
        "global:\n  env: prod\nkeep: 1\ndrop: x\nsub:\n  enabled: true\n  color: blue\nother:\n  color: red\n",
    )
    .add(
        "c/templates/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  drop: {{ .Values.drop | default \"gone\" | quote }}\n  rev: \"{{ .Release.Revision }}-{{ .Release.IsUpgrade }}\"\n  files: {{ .Files.Get \".helmignore\" | quote }}\n",
    )
    .add(
        "c/templates/hook.yaml",
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate\n  annotations:\n    helm.sh/hook: pre-upgrade,post-install\n    helm.sh/hook-weight: \"-2\"\n    helm.sh/hook-delete-policy: hook-succeeded\n",
    )
    .add("c/templates/NOTES.txt", "installed {{ .Release.Name }}")
    .add("c/crds/crd.yaml", "kind: CustomResourceDefinition\n")
    .add("c/charts/sub/Chart.yaml", "apiVersion: v2\nname: sub\nversion: 0.1.0\n")
    .add("c/charts/sub/values.yaml", "color: green\nsize: 2\n")
    .add("c/charts/sub/templates/NOTES.txt", "subchart notes are not shown")
    .add(
        "c/charts/sub/templates/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Chart.Name }}\ndata:\n  color: {{ .Values.color }}\n  env: {{ .Values.global.env }}\n  size: \"{{ .Values.size }}\"\n",
    );
    fs
}

#[test]
fn a_chart_directory_renders_with_helms_values_hooks_and_notes() {
    let fs = umbrella();
    let chart = load_dir(&fs, Path::new("/c")).expect("loads");
    assert_eq!(chart.dependencies.len(), 1, "one subchart directory");
    assert!(
        chart.files.iter().all(|f| f.name != "notes.skip"),
        ".helmignore applies"
    );
    let values = json!({"drop": null, "sub": {"enabled": false}, "other": {"size": 5}});
    let out = render(&chart, &values, &release(), &Capabilities::default(), None).expect("renders");
    // `sub` is disabled by its condition; its alias `other` renders with the user's size.
    assert!(!out.manifest.contains("name: sub\n"), "{}", out.manifest);
    assert!(
        out.manifest
            .contains("# Source: top/charts/other/templates/cm.yaml\n"),
        "{}",
        out.manifest
    );
    assert!(
        out.manifest
            .contains("  color: red\n  env: prod\n  size: \"5\"\n"),
        "{}",
        out.manifest
    );
    assert!(
        out.manifest
            .contains("  drop: \"gone\"\n  rev: \"3-true\"\n"),
        "{}",
        out.manifest
    );
    assert!(
        out.manifest.contains("files: \"*.skip\\n\""),
        "{}",
        out.manifest
    );
    assert_eq!(out.notes, "installed rel");
    assert_eq!(
        out.crds,
        vec![(
            "top/crds/crd.yaml".to_string(),
            "kind: CustomResourceDefinition\n".to_string()
        )]
    );
    assert_eq!(out.hooks.len(), 1);
    let hook = &out.hooks[0];
    assert_eq!(
        (hook.name.as_str(), hook.kind.as_str(), hook.weight),
        ("migrate", "Job", -2)
    );
    assert_eq!(hook.events, vec!["pre-upgrade", "post-install"]);
    assert_eq!(hook.delete_policies, vec!["hook-succeeded"]);
    assert!(
        !out.manifest.contains("migrate"),
        "hooks stay out of the manifest"
    );
    assert_eq!(out.values["keep"], json!(1.0));
    assert!(
        out.values.get("drop").is_none(),
        "null deletes: {}",
        out.values
    );
    assert_eq!(out.values["other"]["global"]["env"], json!("prod"));
}

fn targz(entries: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut header = tar::Header::new_old();
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        tar.append(&header, *data).expect("append");
    }
    let raw = tar.into_inner().expect("tar");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).expect("gzip");
    gz.finish().expect("gzip")
}

#[test]
fn archives_load_and_hostile_ones_are_refused() {
    let chart = b"apiVersion: v2\nname: a\nversion: 0.1.0\n";
    let ok = targz(&[
        (b"a/Chart.yaml", chart),
        (b"a/templates/x.yaml", b"kind: A\n"),
    ]);
    let loaded = load_archive(&ok).expect("loads");
    assert_eq!(loaded.metadata.name, "a");
    assert_eq!(loaded.templates[0].name, "templates/x.yaml");

    let climbing = targz(&[(b"a/Chart.yaml", chart), (b"a/../../etc/passwd", b"x")]);
    let err = load_archive(&climbing).expect_err("parent path");
    assert_eq!(
        err.to_string(),
        "chart illegally references parent directory"
    );

    let top = targz(&[(b"Chart.yaml", chart)]);
    let err = load_archive(&top).expect_err("no top directory");
    assert_eq!(err.to_string(), "chart yaml not in base directory");

    let names: Vec<Vec<u8>> = (0..10_001)
        .map(|i| format!("a/f{i}").into_bytes())
        .collect();
    let mut entries: Vec<(&[u8], &[u8])> = vec![(b"a/Chart.yaml", chart)];
    entries.extend(names.iter().map(|n| (n.as_slice(), &b""[..])));
    let err = load_archive(&targz(&entries)).expect_err("too many files");
    assert!(matches!(err, LoadError::TooLarge(_)), "{err}");

    let err = load_archive(b"not gzip").expect_err("not an archive");
    assert!(matches!(err, LoadError::Archive(_)), "{err}");
}

#[test]
fn library_charts_and_missing_dependencies_are_refused_as_helm_refuses_them() {
    let mut fs = MemFs::new();
    fs.add(
        "l/Chart.yaml",
        "apiVersion: v2\nname: l\nversion: 0.1.0\ntype: library\n",
    );
    let chart = load_dir(&fs, Path::new("/l")).expect("loads");
    let err = render(
        &chart,
        &json!({}),
        &release(),
        &Capabilities::default(),
        None,
    )
    .expect_err("library");
    assert_eq!(err.to_string(), "library charts are not installable");

    let mut fs = MemFs::new();
    fs.add(
        "m/Chart.yaml",
        "apiVersion: v2\nname: m\nversion: 0.1.0\ndependencies:\n- name: gone\n  version: 1.0.0\n",
    );
    let chart = load_dir(&fs, Path::new("/m")).expect("loads");
    let err = render(
        &chart,
        &json!({}),
        &release(),
        &Capabilities::default(),
        None,
    )
    .expect_err("missing");
    assert!(
        err.to_string()
            .ends_with("missing in charts/ directory: gone"),
        "{err}"
    );
}

#[test]
fn schema_and_kube_version_are_checked_before_rendering() {
    let mut fs = MemFs::new();
    fs.add(
        "s/Chart.yaml",
        "apiVersion: v2\nname: s\nversion: 0.1.0\nkubeVersion: '>=1.30.0'\n",
    )
    .add("s/values.yaml", "replicas: 1\n")
    .add(
        "s/values.schema.json",
        r#"{"properties": {"replicas": {"type": "integer"}}}"#,
    )
    .add("s/templates/cm.yaml", "kind: ConfigMap\n");
    let chart = load_dir(&fs, Path::new("/s")).expect("loads");
    let caps = Capabilities {
        kube_version: "v1.29.3".into(),
        api_versions: vec![],
    };
    let err = render(&chart, &json!({}), &release(), &caps, None).expect_err("old kube");
    assert_eq!(
        err.to_string(),
        "chart requires kubeVersion: >=1.30.0 which is incompatible with Kubernetes v1.29.3"
    );
    let err = render(
        &chart,
        &json!({"replicas": "two"}),
        &release(),
        &Capabilities::default(),
        None,
    )
    .expect_err("schema");
    assert!(
        err.to_string().starts_with(
            "values don't meet the specifications of the schema(s) in the following chart(s):\ns:\n"
        ),
        "{err}"
    );
    render(
        &chart,
        &json!({"replicas": 3}),
        &release(),
        &Capabilities::default(),
        None,
    )
    .expect("valid");
    // Helm's `--skip-schema-validation` (Flux's `disableSchemaValidation`).
    let skip = ferroflux_helm::RenderOptions {
        skip_schema_validation: true,
    };
    ferroflux_helm::render_with(
        &chart,
        &json!({"replicas": "two"}),
        &release(),
        &Capabilities::default(),
        None,
        &skip,
    )
    .expect("the schema is not checked");
}
