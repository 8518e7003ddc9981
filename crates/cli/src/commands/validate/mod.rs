//! `ferroflux validate`: checks a fleet repository's manifests as the API server and kustomize
//! would, before they reach a cluster: kinds and versions of Flux's groups, names, the schema
//! of every served kind (unknown fields, types, patterns, enums, required fields), the same
//! object twice in one build, and patch files as the partial objects they are.

mod object;
mod tree;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde_json::Value;

use object::{Mode, Outcome, Registry};
use tree::{PatchKind, Tree};

/// Validate manifests: Flux's kinds in full, names of every kind; other kinds are skipped.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// YAML files, or directories searched for `*.yaml`/`*.yml` and kustomization files.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

/// An object's identity in a build, as kustomize keys its resources.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Id {
    group: String,
    kind: String,
    namespace: String,
    name: String,
}

/// Where an object was read, and how it is named in messages.
#[derive(Clone)]
struct Place {
    file: usize,
    document: usize,
    label: String,
}

/// An object of a file, with the namespace written in it.
struct Written {
    place: Place,
    group: String,
    kind: String,
    namespace: Option<String>,
    name: String,
}

pub fn run(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let tree = Tree::scan(&args.paths)?;
    let registry = Registry::new();
    let (mut checked, mut skipped, mut problems) = (0usize, 0usize, 0usize);
    for (file, problem) in &tree.kustomization_problems {
        problems += 1;
        outln!("✗ {}: {problem}", file.display())?;
    }
    let mut written: BTreeMap<PathBuf, Vec<Written>> = BTreeMap::new();
    for (index, file) in tree.files.iter().enumerate() {
        // Kustomization files are kustomize's input, not objects; unreadable ones are
        // reported above.
        if tree.kustomization_files.contains(&file.real) {
            continue;
        }
        let shown = file.shown.display();
        let text = match tree::read(&file.real) {
            Ok(text) => text,
            Err(err) => {
                problems += 1;
                outln!("✗ {shown}: {err:#}")?;
                continue;
            }
        };
        let docs: Vec<Value> = match ferroflux_gocompat::yaml::from_multiple(&text) {
            Ok(docs) => docs,
            Err(err) => {
                problems += 1;
                outln!("✗ {shown}: not valid YAML: {err}")?;
                continue;
            }
        };
        let patch = tree.patches.get(&file.real).copied();
        let operations = match patch {
            Some(PatchKind::Json6902) => true,
            Some(PatchKind::Auto) => docs.iter().any(Value::is_array),
            None => false,
        };
        for (document, doc) in docs.iter().enumerate().filter(|(_, d)| !d.is_null()) {
            let kind = doc["kind"].as_str().unwrap_or_default();
            let name = doc["metadata"]["name"].as_str().unwrap_or("<unnamed>");
            let label = if operations {
                "JSON 6902 patch".to_string()
            } else if patch.is_some() {
                format!("patch of {kind} {name}")
            } else {
                format!("{kind} {name}")
            };
            let place = Place {
                file: index,
                document: document + 1,
                label,
            };
            let found = if operations {
                Outcome::Checked(object::json6902_problems(doc))
            } else {
                let mode = if patch.is_some() {
                    Mode::Patch
                } else {
                    Mode::Object
                };
                object::check(&registry, doc, mode)
            };
            match found {
                Outcome::Skipped => skipped += 1,
                Outcome::Checked(found) => {
                    checked += 1;
                    for problem in found {
                        problems += 1;
                        outln!("✗ {}: {problem}", at(&tree, &place))?;
                    }
                }
            }
            if patch.is_none()
                && let Some(object) = identify(doc, place)
            {
                written.entry(file.real.clone()).or_default().push(object);
            }
        }
    }
    for line in duplicates(&tree, &written) {
        problems += 1;
        outln!("✗ {line}")?;
    }
    if problems > 0 {
        outln!("✗ {problems} problem(s) in {checked} object(s)")?;
        return Ok(ExitCode::FAILURE);
    }
    outln!("✔ {checked} object(s) valid, {skipped} of other kinds skipped")?;
    Ok(ExitCode::SUCCESS)
}

fn at(tree: &Tree, place: &Place) -> String {
    format!(
        "{} (document {}, {})",
        tree.files[place.file].shown.display(),
        place.document,
        place.label
    )
}

/// The identity of an object a build would key, when the document is one.
fn identify(doc: &Value, place: Place) -> Option<Written> {
    let api_version = doc["apiVersion"].as_str()?;
    let (group, _) = ferroflux_api::convert::split_api_version(api_version);
    if group.ends_with("config.k8s.io") {
        return None;
    }
    Some(Written {
        place,
        group: group.to_string(),
        kind: doc["kind"].as_str()?.to_string(),
        namespace: doc["metadata"]["namespace"].as_str().map(str::to_string),
        name: doc["metadata"]["name"].as_str()?.to_string(),
    })
}

/// The same group/kind/namespace/name twice in one build, in kustomize's words; each pair
/// reported once even when several builds include it.
fn duplicates(tree: &Tree, written: &BTreeMap<PathBuf, Vec<Written>>) -> Vec<String> {
    let mut lines = Vec::new();
    let mut reported = BTreeSet::new();
    for build in &tree.builds {
        let mut first: BTreeMap<Id, &Written> = BTreeMap::new();
        for (file, forced_namespace) in build {
            for object in written.get(file).into_iter().flatten() {
                let namespace = forced_namespace
                    .clone()
                    .or_else(|| object.namespace.clone())
                    .unwrap_or_default();
                let id = Id {
                    group: object.group.clone(),
                    kind: object.kind.clone(),
                    namespace,
                    name: object.name.clone(),
                };
                let here = &object.place;
                match first.get(&id) {
                    None => {
                        first.insert(id, object);
                    }
                    Some(earlier_object) => {
                        let earlier = &earlier_object.place;
                        // kustomize's words: objects written alike collide when added, objects
                        // that only the kustomization's `namespace:` makes alike collide when
                        // it is applied.
                        let conflict = if earlier_object.namespace == object.namespace {
                            "may not add resource with an already registered id"
                        } else {
                            "namespace transformation produces ID conflict"
                        };
                        let pair = (earlier.file, earlier.document, here.file, here.document);
                        if reported.insert(pair) {
                            let gk = if id.group.is_empty() {
                                id.kind.clone()
                            } else {
                                format!("{}.{}", id.kind, id.group)
                            };
                            let ns = if id.namespace.is_empty() {
                                String::new()
                            } else {
                                format!(" in namespace {}", id.namespace)
                            };
                            lines.push(format!(
                                "{}: {conflict}: {gk} {}{ns}, first defined in {}",
                                at(tree, here),
                                id.name,
                                at(tree, earlier)
                            ));
                        }
                    }
                }
            }
        }
    }
    lines
}
