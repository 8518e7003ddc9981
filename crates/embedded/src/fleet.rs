//! The local Git repositories of the embedded control plane: the fleet (with the bootstrap
//! files `flux bootstrap` would commit) and the tenants' app repository, created once from
//! folders on disk or from the bundled examples.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use git2::{FileMode, Oid, Repository, Signature};
use include_dir::{Dir, include_dir};

use crate::Error;

/// The example fleet bundled into the binary.
pub static EXAMPLE_FLEET: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../../examples/fleet-infra");
/// The example tenant apps bundled into the binary.
pub static EXAMPLE_APPS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../../examples/tenant-apps");

/// Files of a repository's first commit: path in the repository, content.
pub type Files = Vec<(String, Vec<u8>)>;

/// The files of a bundled folder.
pub fn bundled_files(dir: &Dir<'_>) -> Files {
    let mut files = Vec::new();
    collect_bundled(dir, &mut files);
    files.sort();
    files
}

fn collect_bundled(dir: &Dir<'_>, out: &mut Files) {
    for file in dir.files() {
        out.push((
            file.path().to_string_lossy().into_owned(),
            file.contents().to_vec(),
        ));
    }
    for sub in dir.dirs() {
        collect_bundled(sub, out);
    }
}

/// The files below `root` on disk (`.git` excluded).
pub fn disk_files(root: &Path) -> Result<Files, Error> {
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).map_err(Error::read(&dir))? {
            let path = entry?.path();
            if path.file_name().is_some_and(|n| n == ".git") {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                let content = std::fs::read(&path).map_err(Error::read(&path))?;
                // Every path walked starts with `root`: the stack only grows below it.
                let relative = path.strip_prefix(root).unwrap_or(&path);
                files.push((relative.to_string_lossy().into_owned(), content));
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The bootstrap files `flux bootstrap` commits under `clusters/<cluster>/flux-system`: the
/// GitRepository and Kustomization that sync the fleet itself. The Kustomization names the
/// kustomize-controller ServiceAccount, as Flux's multi-tenancy lockdown patches it, so that it
/// keeps its cluster-admin rights under `--default-service-account`.
pub fn bootstrap_files(cluster: &str, fleet_url: &str) -> Files {
    let kustomization = "apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- gotk-sync.yaml
";
    vec![
        (
            format!("clusters/{cluster}/flux-system/gotk-sync.yaml"),
            sync_manifests(cluster, fleet_url).into_bytes(),
        ),
        (
            format!("clusters/{cluster}/flux-system/kustomization.yaml"),
            kustomization.as_bytes().to_vec(),
        ),
    ]
}

/// `gotk-sync.yaml`: the GitRepository and Kustomization that sync the fleet itself (applied
/// by the bootstrap too, so the fleet syncs before the first Git poll).
pub fn sync_manifests(cluster: &str, fleet_url: &str) -> String {
    let applier = crate::manifests::APPLIER;
    format!(
        "apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: flux-system
  namespace: flux-system
spec:
  interval: 1m0s
  ref:
    branch: main
  url: {fleet_url}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: flux-system
  namespace: flux-system
spec:
  interval: 10m0s
  path: ./clusters/{cluster}
  prune: true
  serviceAccountName: {applier}
  sourceRef:
    kind: GitRepository
    name: flux-system
"
    )
}

/// Creates the bare repository `<root>/<name>.git` with one commit of `files` on `main`;
/// an existing repository is left as it is. Returns its path and whether it was created.
pub fn ensure_repository(
    root: &Path,
    name: &str,
    files: &Files,
    message: &str,
) -> Result<(PathBuf, bool), Error> {
    let path = root.join(format!("{name}.git"));
    if path.join("HEAD").is_file() {
        return Ok((path, false));
    }
    let repo = Repository::init_bare(&path).map_err(|source| Error::CreateRepository {
        path: path.clone(),
        source,
    })?;
    let mut root_dir = TreeDir::default();
    for (file, content) in files {
        let blob = repo.blob(content)?;
        let parts: Vec<&str> = file.split('/').filter(|p| !p.is_empty()).collect();
        root_dir.insert(&parts, blob);
    }
    let tree_id = root_dir.write(&repo)?;
    let tree = repo.find_tree(tree_id)?;
    let author = Signature::now("ferroflux", "ferroflux@localhost")?;
    repo.commit(
        Some("refs/heads/main"),
        &author,
        &author,
        message,
        &tree,
        &[],
    )?;
    repo.set_head("refs/heads/main")?;
    Ok((path, true))
}

/// A directory of the first commit, written bottom-up as git trees.
#[derive(Default)]
struct TreeDir {
    files: BTreeMap<String, Oid>,
    dirs: BTreeMap<String, TreeDir>,
}

impl TreeDir {
    fn insert(&mut self, parts: &[&str], blob: Oid) {
        match parts {
            [] => {}
            [file] => {
                self.files.insert(file.to_string(), blob);
            }
            [dir, rest @ ..] => self
                .dirs
                .entry(dir.to_string())
                .or_default()
                .insert(rest, blob),
        }
    }

    fn write(&self, repo: &Repository) -> Result<Oid, git2::Error> {
        let mut builder = repo.treebuilder(None)?;
        for (name, blob) in &self.files {
            builder.insert(name, *blob, FileMode::Blob.into())?;
        }
        for (name, dir) in &self.dirs {
            builder.insert(name, dir.write(repo)?, FileMode::Tree.into())?;
        }
        builder.write()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_fleet_has_the_seed_layout() {
        let files: Vec<String> = bundled_files(&EXAMPLE_FLEET)
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        for wanted in [
            "clusters/prod/tenants.yaml",
            "tenants/base/team-a/rbac.yaml",
            "tenants/base/team-a/sync.yaml",
            "tenants/base/team-b/sync.yaml",
            "tenants/production/team-a/kustomization.yaml",
        ] {
            assert!(
                files.iter().any(|f| f == wanted),
                "{wanted} missing from {files:?}"
            );
        }
    }

    #[test]
    fn a_repository_is_created_once_with_its_files() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut files = bootstrap_files("prod", "http://127.0.0.1:1/fleet-infra.git");
        files.push(("README.md".into(), b"fleet".to_vec()));
        let (path, created) =
            ensure_repository(dir.path(), "fleet-infra", &files, "bootstrap").expect("creates");
        assert!(created);
        let repo = Repository::open_bare(&path).expect("opens");
        let head = repo
            .head()
            .expect("HEAD")
            .peel_to_commit()
            .expect("a commit");
        assert_eq!(head.message().ok(), Some("bootstrap"));
        let tree = head.tree().expect("tree");
        let sync = tree
            .get_path(Path::new("clusters/prod/flux-system/gotk-sync.yaml"))
            .expect("bootstrap file");
        let blob = repo.find_blob(sync.id()).expect("blob");
        assert!(String::from_utf8_lossy(blob.content()).contains("path: ./clusters/prod"));
        let (_, again) =
            ensure_repository(dir.path(), "fleet-infra", &files, "bootstrap").expect("exists");
        assert!(!again, "an existing repository is kept");
    }
}
