//! One image update automation over a fleet repository of 5,000 YAML files, each with a
//! setter marker: checkout from `git http-backend` on loopback, rewrite, render the message,
//! commit and push; then the same run again with nothing to change. Prints the timings (and
//! skips with a message when the git peer's programs are missing).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Instant;

use ferroflux_controllers::imageupdateautomation::{MessageData, apply_setters, render};
use ferroflux_image::setters::{LatestImage, Setters};
use ferroflux_source::git::push::{
    Author, CommitRequest, UpdateOutcome, UpdateRequest, update_branch,
};
use ferroflux_source::git::{CloneOptions, GitRef};
use ferroflux_testpeers::{GitHttp, GitWork};

const FILES: usize = 5_000;
const POLICIES: usize = 10;

fn main() {
    let server = match GitHttp::start(None) {
        Ok(server) => server,
        Err(err) if err.is_skip() => {
            eprintln!("skipping the automation benchmark: {err}");
            return;
        }
        Err(err) => panic!("git peer: {err}"),
    };
    let bare = server.repos().create("fleet").expect("repo");
    let work = GitWork::new(&bare).expect("work tree");
    for i in 0..FILES {
        let p = i % POLICIES;
        work.write(
            &format!("apps/app-{i:04}/deployment.yaml"),
            format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{i}\n  namespace: team-a\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: reg.example/app-{p}:1.0.0 # {{\"$imagepolicy\": \"team-a:app-{p}\"}}\n"
            ),
        )
        .expect("write");
    }
    work.commit("fleet").expect("commit");
    work.push().expect("push");

    let latest: Vec<(String, LatestImage)> = (0..POLICIES)
        .map(|p| {
            (
                format!("team-a:app-{p}"),
                LatestImage {
                    name: format!("reg.example/app-{p}"),
                    tag: "1.1.0".into(),
                    digest: None,
                },
            )
        })
        .collect();
    let setters = Setters::from_policies(latest.iter().map(|(k, v)| (k.as_str(), v)));
    let url = server.url("fleet");
    let options = CloneOptions::default();
    let checkout = GitRef::branch("main");
    let request = UpdateRequest {
        url: &url,
        checkout: &checkout,
        push_branch: "flux-image-updates",
        refspec: None,
        push_options: &[],
        options: &options,
        attempts: 1,
    };
    let started = Instant::now();
    let scratch = tempfile::tempdir().expect("temp dir");
    ferroflux_source::git::checkout(&url, &checkout, scratch.path(), &options).expect("checkout");
    println!(
        "plain checkout of {FILES} YAML files: {:.0} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
    for round in ["update", "no change"] {
        let started = Instant::now();
        let mut rewrite_time = None;
        let outcome = update_branch(&request, |tree| {
            let t = Instant::now();
            let changes = apply_setters(tree.dir, Some("./apps"), &setters).expect("rewrite");
            rewrite_time = Some(t.elapsed());
            let count = changes.len();
            if changes.is_empty() {
                return Ok::<_, Infallible>((count, None));
            }
            let paths = changes
                .iter()
                .map(|c| std::path::Path::new("apps").join(&c.file))
                .collect();
            let data = MessageData {
                namespace: "team-a".into(),
                name: "fleet".into(),
                changes,
                policies: BTreeMap::new(),
                values: BTreeMap::new(),
            };
            let message = render(
                Some("{{ len .Changed.Changes }} images in {{ len .Changed.FileChanges }} files"),
                &data,
            )
            .expect("message");
            Ok((
                count,
                Some(CommitRequest {
                    message,
                    author: Author {
                        name: "bench".into(),
                        email: "bench@example.com".into(),
                    },
                    paths,
                }),
            ))
        })
        .expect("automation run");
        let changed = match outcome {
            UpdateOutcome::Pushed { edit, .. } | UpdateOutcome::Unchanged { edit, .. } => edit,
        };
        println!(
            "automation over {FILES} YAML files ({round}): {changed} changes, total {:.0} ms (setter rewrite {:.0} ms)",
            started.elapsed().as_secs_f64() * 1000.0,
            rewrite_time.unwrap_or_default().as_secs_f64() * 1000.0,
        );
    }
}
