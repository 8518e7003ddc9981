//! The commands of issue 19 that need no cluster, side by side with the real `flux` 2.9.5:
//! `envsubst` (substitutions, `--strict`, errors), `build artifact` (progress lines, errors,
//! a tarball `tar` lists) and `completion` for every shell flux supports.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn run(program: &Path, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("finishes")
}

fn shown(output: &Output) -> String {
    format!(
        "exit {}\n{}{}",
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn local_commands_print_what_flux_prints() {
    let flux = ferroflux_testpeers::require!(ferroflux_testpeers::peer_binary("flux"));
    let ours = Path::new(env!("CARGO_BIN_EXE_ferroflux"));
    let dir = tempfile::tempdir().expect("temp dir");
    let manifests = dir.path().join("manifests");
    std::fs::create_dir(&manifests).expect("manifests dir");
    std::fs::write(
        manifests.join("cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
    )
    .expect("write a manifest");
    let manifests = manifests.to_string_lossy().into_owned();
    let input = "a: ${FOO}\nb: $BAR ${BAR:=x}\nc: ${FOO:-d} ${#FOO}\n";
    let env = [("FOO", "one")];
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["envsubst".into()], input),
        (vec!["envsubst".into(), "--strict".into()], "a: ${NOPE}\n"),
        (vec!["envsubst".into()], "a: ${NOPE\n"),
        (
            vec!["envsubst".into(), "--strict".into()],
            "a: ${NOPE:=set}\n",
        ),
        (
            vec![
                "build".into(),
                "artifact".into(),
                "--path".into(),
                manifests.clone(),
                "--output".into(),
                dir.path().join("OUT.tgz").to_string_lossy().into_owned(),
            ],
            "",
        ),
        (
            vec![
                "build".into(),
                "artifact".into(),
                "--path".into(),
                "/nonexistent".into(),
            ],
            "",
        ),
        (vec!["build".into(), "artifact".into()], ""),
    ];
    let mut different = Vec::new();
    for (args, stdin) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let theirs = shown(&run(&flux, &args, stdin, &env));
        let mine = shown(&run(ours, &args, stdin, &env));
        if theirs != mine {
            different.push(format!(
                "{args:?}:\n--- flux\n{theirs}--- ferroflux\n{mine}"
            ));
        }
    }
    eprintln!(
        "{} identical, {} different",
        cases.len() - different.len(),
        different.len()
    );
    assert!(different.is_empty(), "{}", different.join("\n"));

    // The artifact holds the manifest.
    let listing = Command::new("tar")
        .arg("-tzf")
        .arg(dir.path().join("OUT.tgz"))
        .output()
        .expect("tar runs");
    assert!(String::from_utf8_lossy(&listing.stdout).contains("cm.yaml"));

    // A completion script per shell; bash's loads in bash.
    for (shell, marker) in [
        ("bash", "complete -F _ferroflux"),
        ("zsh", "#compdef ferroflux"),
        ("fish", "complete -c ferroflux"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let output = run(ours, &["completion", shell], "", &[]);
        assert!(output.status.success(), "{}", shown(&output));
        assert!(
            String::from_utf8_lossy(&output.stdout).contains(marker),
            "completion {shell}"
        );
    }
    // A reader that stops early ends it quietly, as the other printing commands.
    let mut child = Command::new(ours)
        .args(["completion", "zsh"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    drop(child.stdout.take());
    let closed = child.wait_with_output().expect("finishes");
    assert_eq!(closed.status.code(), Some(0), "{}", shown(&closed));
    assert!(closed.stderr.is_empty(), "{}", shown(&closed));

    let script = dir.path().join("completion.bash");
    std::fs::write(&script, run(ours, &["completion", "bash"], "", &[]).stdout)
        .expect("write the script");
    let loaded = Command::new("bash")
        .arg("-c")
        .arg(format!(". {} && complete -p ferroflux", script.display()))
        .output()
        .expect("bash runs");
    assert!(loaded.status.success(), "{}", shown(&loaded));
}
