//! Commit and push (`git::push::update_branch`) against `git http-backend` on loopback: a
//! new push branch is created from the checkout ref, later updates stack on it, an edit that
//! changes nothing makes no commit, and a push rejected because the branch moved is retried
//! on a fresh checkout.

use std::cell::Cell;
use std::convert::Infallible;

use ferroflux_source::git::push::{
    Author, CommitRequest, PushError, UpdateOutcome, UpdateRequest, update_branch,
};
use ferroflux_source::git::{CloneOptions, GitRef};
use ferroflux_testpeers::{Credentials, GitHttp, GitWork, require};

fn author() -> Author {
    Author {
        name: "fluxbot".into(),
        email: "fluxbot@example.com".into(),
    }
}

fn commit(message: &str) -> Option<CommitRequest> {
    Some(CommitRequest {
        message: message.into(),
        author: author(),
        paths: Vec::new(),
    })
}

/// Rewrites `app.yaml` to `content`.
fn write_app(dir: &std::path::Path, content: &str) {
    std::fs::write(dir.join("app.yaml"), content).expect("write");
}

/// Creates the repository `fleet` on `server` holding `files` in one pushed commit; returns
/// a work tree on it and that commit.
fn fleet(server: &GitHttp, files: &[(&str, &str)]) -> (GitWork, String) {
    let bare = server.repos().create("fleet").expect("repo");
    let work = GitWork::new(&bare).expect("work tree");
    for (path, content) in files {
        work.write(path, content).expect("write");
    }
    let head = work.commit("initial").expect("commit");
    work.push().expect("push");
    (work, head)
}

/// A single-attempt update of `push_branch` from the `checkout` branch of `url`.
fn request<'a>(
    url: &'a str,
    checkout: &'a GitRef,
    push_branch: &'a str,
    options: &'a CloneOptions,
) -> UpdateRequest<'a> {
    UpdateRequest {
        url,
        checkout,
        push_branch,
        refspec: None,
        push_options: &[],
        options,
        attempts: 1,
    }
}

#[test]
fn pushes_create_then_stack_on_the_branch_and_skip_empty_edits() {
    let server = require!(GitHttp::start(None));
    let (work, main) = fleet(&server, &[("app.yaml", "image: app:1\n")]);
    let url = server.url("fleet");
    let options = CloneOptions::default();
    let checkout = GitRef::branch("main");
    let request = request(&url, &checkout, "auto", &options);

    let first = update_branch(&request, |tree| {
        assert_eq!(tree.base, main, "a new branch starts at the checkout ref");
        write_app(tree.dir, "image: app:2\n");
        Ok::<_, Infallible>(((), commit("to 2")))
    })
    .expect("first update");
    let UpdateOutcome::Pushed { commit: c1, .. } = first else {
        panic!("expected a push, got {first:?}");
    };
    work.git(&["fetch", "-q", "origin"]).expect("fetch");
    assert_eq!(
        work.git(&["rev-parse", "origin/auto"]).expect("rev").trim(),
        c1
    );
    assert_eq!(
        work.git(&["rev-parse", "origin/main"]).expect("rev").trim(),
        main
    );
    assert_eq!(
        work.git(&["log", "-1", "--format=%an <%ae>|%cn|%B", "origin/auto"])
            .expect("log")
            .trim(),
        "fluxbot <fluxbot@example.com>|fluxbot|to 2"
    );

    let second = update_branch(&request, |tree| {
        assert_eq!(tree.base, c1, "an existing push branch is the base");
        let now = std::fs::read_to_string(tree.dir.join("app.yaml")).expect("read");
        assert_eq!(now, "image: app:2\n");
        write_app(tree.dir, "image: app:3\n");
        Ok::<_, Infallible>(((), commit("to 3")))
    })
    .expect("second update");
    let UpdateOutcome::Pushed {
        commit: c2, base, ..
    } = second
    else {
        panic!("expected a push, got {second:?}");
    };
    assert_eq!(base, c1);
    work.git(&["fetch", "-q", "origin"]).expect("fetch");
    assert_eq!(
        work.git(&["rev-parse", "origin/auto^"])
            .expect("rev")
            .trim(),
        c1,
        "the second commit stacks on the first"
    );
    assert_eq!(
        work.git(&["rev-parse", "origin/auto"]).expect("rev").trim(),
        c2
    );

    // Rewriting to the same content asks for a commit, but the tree is unchanged.
    let same = update_branch(&request, |tree| {
        write_app(tree.dir, "image: app:3\n");
        Ok::<_, Infallible>(((), commit("nothing")))
    })
    .expect("no-op update");
    assert!(matches!(same, UpdateOutcome::Unchanged { .. }), "{same:?}");
    work.git(&["fetch", "-q", "origin"]).expect("fetch");
    assert_eq!(
        work.git(&["rev-parse", "origin/auto"]).expect("rev").trim(),
        c2
    );
}

#[test]
fn a_push_rejected_because_the_branch_moved_is_retried_on_a_fresh_checkout() {
    let server = require!(GitHttp::start(None));
    let (work, _) = fleet(
        &server,
        &[("app.yaml", "image: app:1\n"), ("other.yaml", "x: 1\n")],
    );
    let url = server.url("fleet");
    let options = CloneOptions::default();
    let checkout = GitRef::branch("main");
    let mut request = UpdateRequest {
        attempts: 2,
        ..request(&url, &checkout, "main", &options)
    };
    let attempt = Cell::new(0);
    let outcome = update_branch(&request, |tree| {
        attempt.set(attempt.get() + 1);
        if attempt.get() == 1 {
            // Someone else pushes to the branch while we edit.
            work.write("other.yaml", "x: 2\n").expect("write");
            work.commit("concurrent").expect("commit");
            work.push().expect("concurrent push");
        }
        write_app(tree.dir, "image: app:2\n");
        Ok::<_, Infallible>((attempt.get(), commit("to 2")))
    })
    .expect("retried update");
    assert_eq!(attempt.get(), 2, "the first push was rejected and retried");
    let UpdateOutcome::Pushed {
        commit: c, edit, ..
    } = outcome
    else {
        panic!("expected a push");
    };
    assert_eq!(edit, 2);
    work.git(&["fetch", "-q", "origin"]).expect("fetch");
    assert_eq!(
        work.git(&["rev-parse", "origin/main"]).expect("rev").trim(),
        c
    );
    assert_eq!(
        work.git(&["log", "-1", "--format=%s", "origin/main^"])
            .expect("log")
            .trim(),
        "concurrent",
        "the retry is based on the moved branch"
    );
    assert_eq!(
        work.git(&["show", "origin/main:other.yaml"]).expect("show"),
        "x: 2\n",
        "the concurrent change is kept"
    );

    // With one attempt the rejection is reported, naming the branch.
    request.attempts = 1;
    let moved = Cell::new(false);
    let err = update_branch(&request, |tree| {
        if !moved.replace(true) {
            work.git(&["pull", "-q", "--ff-only", "origin", "main"])
                .expect("pull");
            work.write("other.yaml", "x: 3\n").expect("write");
            work.commit("concurrent again").expect("commit");
            work.push().expect("concurrent push");
        }
        write_app(tree.dir, "image: app:3\n");
        Ok::<_, Infallible>(((), commit("to 3")))
    })
    .expect_err("rejected");
    assert!(
        matches!(err, PushError::Rejected { attempts: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("refs/heads/main"), "{err}");
}

#[test]
fn push_credentials_never_appear_in_errors() {
    let credentials = Credentials::generate();
    let server = require!(GitHttp::start(Some(credentials.clone())));
    fleet(&server, &[("app.yaml", "image: app:1\n")]);
    let url = server.url("fleet");
    let options = CloneOptions {
        auth: ferroflux_source::git::GitAuth::basic(&credentials.username, "wrong-password-xyz"),
        ..CloneOptions::default()
    };
    let checkout = GitRef::branch("main");
    let request = request(&url, &checkout, "auto", &options);
    let err = update_branch(&request, |_| Ok::<_, Infallible>(((), None))).expect_err("auth");
    let text = err.to_string();
    assert!(text.contains("authentication"), "{text}");
    assert!(
        !text.contains("wrong-password-xyz") && !text.contains(&credentials.password),
        "{text}"
    );

    let good = CloneOptions {
        auth: ferroflux_source::git::GitAuth::basic(&credentials.username, &credentials.password),
        ..CloneOptions::default()
    };
    let request = UpdateRequest {
        options: &good,
        ..request
    };
    let outcome = update_branch(&request, |tree| {
        write_app(tree.dir, "image: app:2\n");
        Ok::<_, Infallible>(((), commit("authenticated")))
    })
    .expect("authenticated push");
    assert!(
        matches!(outcome, UpdateOutcome::Pushed { .. }),
        "{outcome:?}"
    );
}
