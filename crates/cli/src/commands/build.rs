//! `ferroflux build kustomization NAME --path DIR`: what the Kustomization would apply from a
//! local directory, as `flux build kustomization` prints it — the Kustomization's settings laid
//! over the directory (or a generated kustomization.yaml), kustomize's build, postBuild
//! substitution (`substitute` and `substituteFrom` read from the cluster), the ownership labels
//! and `commonMetadata`; each object after a `---` line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use kube::api::{Api, DynamicObject};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

use ferroflux_api::kustomize::Kustomization;
use ferroflux_controllers::kustomization::{generator, postbuild};
use ferroflux_controllers::rootfs::RootedFs;
use ferroflux_gocompat::yaml::emit::{self, Flavor};

use super::cluster::{self, ClusterArgs};
use super::get;

/// Build a Flux object locally.
#[derive(Debug, Args)]
pub struct BuildArgs {
    #[command(subcommand)]
    what: What,
    #[command(flatten)]
    cluster: ClusterArgs,
}

#[derive(Debug, Subcommand)]
enum What {
    /// A Kustomization: its objects built from a local directory.
    #[command(visible_alias = "ks")]
    Kustomization(KustomizationArgs),
    /// An artifact: a tgz file with the manifests of a directory or a single file.
    Artifact(super::build_artifact::BuildArtifactArgs),
}

/// `build kustomization` flags, as flux's.
#[derive(Debug, Args)]
pub struct KustomizationArgs {
    #[command(flatten)]
    local: LocalKustomizationArgs,
    /// Dry run mode: the Kustomization from the file, nothing read from the cluster.
    #[arg(long)]
    dry_run: bool,
}

/// The flags `build kustomization` and `diff kustomization` share: which Kustomization, and the
/// local directory (and optionally file) it is built from.
#[derive(Debug, Args)]
pub(super) struct LocalKustomizationArgs {
    /// The Kustomization's name.
    pub(super) name: Option<String>,
    /// Path to the manifests location.
    #[arg(long, default_value = "")]
    pub(super) path: String,
    /// Path to the Flux Kustomization YAML file.
    #[arg(long)]
    pub(super) kustomization_file: Option<PathBuf>,
    /// Fail when a variable without default is not set.
    #[arg(long)]
    pub(super) strict_substitute: bool,
}

impl LocalKustomizationArgs {
    /// The Kustomization's name, which flux requires.
    pub(super) fn name(&self) -> anyhow::Result<String> {
        match &self.name {
            Some(name) => Ok(name.clone()),
            None => bail!("kustomization name is required"),
        }
    }

    /// The Kustomization of `--kustomization-file`, when given.
    pub(super) fn read_file(
        &self,
        name: &str,
        namespace: &str,
    ) -> anyhow::Result<Option<Kustomization>> {
        match &self.kustomization_file {
            Some(file) if !file.is_file() => {
                bail!(
                    "invalid kustomization file {:?}",
                    file.display().to_string()
                )
            }
            Some(file) => Ok(Some(read_kustomization_file(file, name, namespace)?)),
            None => Ok(None),
        }
    }
}

pub fn run(args: BuildArgs) -> anyhow::Result<ExitCode> {
    let ks = match &args.what {
        What::Kustomization(ks) => ks,
        What::Artifact(artifact) => return super::build_artifact::run(artifact),
    };
    let name = ks.local.name()?;
    let path =
        std::path::absolute(&ks.local.path).unwrap_or_else(|_| PathBuf::from(&ks.local.path));
    if ks.local.path.is_empty() || !path.is_dir() {
        bail!("invalid resource path {:?}", path.display().to_string());
    }
    if ks.dry_run && ks.local.kustomization_file.is_none() {
        bail!("dry-run mode requires a kustomization file");
    }
    let from_file = ks.local.read_file(&name, &args.cluster.namespace)?;
    let namespace = args.cluster.namespace.clone();
    cluster::block_on(args.cluster.timeout()?, async {
        let client = if ks.dry_run {
            None
        } else {
            Some(args.cluster.client().await?)
        };
        let kustomization = match (&client, from_file) {
            (Some(client), file) => match live(client, &namespace, &name).await? {
                Some(live) => live,
                None => file.ok_or_else(|| {
                    anyhow::anyhow!(
                        "failed to get kustomization object: kustomizations.kustomize.toolkit.fluxcd.io \"{name}\" not found"
                    )
                })?,
            },
            (None, Some(file)) => file,
            (None, None) => bail!("dry-run mode requires a kustomization file"),
        };
        let objects = build(
            &kustomization,
            &path,
            client.as_ref(),
            ks.local.strict_substitute,
        )
        .await?;
        let mut text = String::new();
        for object in &objects {
            text.push_str(&emit::to_string(&super::export::node(object), Flavor::Sigs));
            text.push_str("---\n");
        }
        out!("{text}")?;
        Ok(ExitCode::SUCCESS)
    })
}

pub(crate) fn read_kustomization_file(
    file: &Path,
    name: &str,
    namespace: &str,
) -> anyhow::Result<Kustomization> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let documents: Vec<Value> = ferroflux_gocompat::yaml::from_multiple(&text)
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let found = documents.into_iter().find(|d| {
        d["kind"] == "Kustomization"
            && d["apiVersion"]
                .as_str()
                .is_some_and(|v| v.starts_with("kustomize.toolkit.fluxcd.io/"))
            && d["metadata"]["name"] == name
            && d["metadata"]["namespace"].as_str().unwrap_or(namespace) == namespace
    });
    let Some(found) = found else {
        bail!(
            "failed to get kustomization object: failed find kustomization with name '{name}' and namespace '{namespace}' in file '{}'",
            file.display()
        );
    };
    Ok(serde_json::from_value(found)?)
}

pub(crate) async fn live(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> anyhow::Result<Option<Kustomization>> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &get::KUSTOMIZATIONS.resource());
    match api.get_opt(name).await {
        Ok(Some(object)) => Ok(Some(serde_json::from_value(serde_json::to_value(object)?)?)),
        Ok(None) => Ok(None),
        Err(err) => Err(anyhow::anyhow!("failed to get kustomization object: {err}")),
    }
}

/// The file system the build reads: the disk as it is, but for the kustomization file of the
/// built directory, which holds the Kustomization's settings laid over it (flux writes that file
/// and restores it afterwards; here it never reaches the disk).
struct Overlaid {
    /// The kustomization file in the built directory.
    file: PathBuf,
    contents: Vec<u8>,
}

impl ferroflux_kustomize::fs::FileSystem for Overlaid {
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        if path == self.file {
            return Ok(self.contents.clone());
        }
        ferroflux_kustomize::fs::DiskFs.read(path)
    }
    fn is_dir(&self, path: &Path) -> bool {
        path != self.file && ferroflux_kustomize::fs::DiskFs.is_dir(path)
    }
    fn exists(&self, path: &Path) -> bool {
        path == self.file || ferroflux_kustomize::fs::DiskFs.exists(path)
    }
    fn canonicalize(&self, path: &Path) -> std::io::Result<PathBuf> {
        if path == self.file {
            return Ok(path.to_path_buf());
        }
        ferroflux_kustomize::fs::DiskFs.canonicalize(path)
    }
    fn read_dir(&self, path: &Path) -> std::io::Result<Vec<String>> {
        let mut names = ferroflux_kustomize::fs::DiskFs.read_dir(path)?;
        if self.file.parent() == Some(path)
            && let Some(name) = self.file.file_name()
        {
            let name = name.to_string_lossy().into_owned();
            if !names.contains(&name) {
                names.push(name);
                names.sort();
            }
        }
        Ok(names)
    }
}

/// The objects the Kustomization builds from `dir`.
pub(crate) async fn build(
    ks: &Kustomization,
    dir: &Path,
    client: Option<&kube::Client>,
    strict: bool,
) -> anyhow::Result<Vec<Value>> {
    // flux builds the directory where it is, so a kustomization may reach files beside it
    // (`../base`): the user's own files, read as flux reads them.
    let fs = RootedFs::new(Path::new("/"))?;
    let (file, contents) = overlay(&fs, ks, dir)
        .map_err(|e| anyhow::anyhow!("failed to generate kustomization.yaml: {e}"))?;
    let overlaid = Overlaid { file, contents };
    // flux's build keeps the input order (kustomize-controller orders when it applies).
    let options = ferroflux_kustomize::Options {
        reorder: ferroflux_kustomize::Reorder::None,
        load_restrictor: ferroflux_kustomize::LoadRestrictor::None,
    };
    let resources = ferroflux_kustomize::build_resources(&overlaid, dir, options)
        .map_err(|e| anyhow::anyhow!("kustomize build failed: {e}"))?;
    let vars = variables(ks, client).await?;
    let name = ks.metadata.name.clone().unwrap_or_default();
    let namespace = ks.metadata.namespace.clone().unwrap_or_default();
    let mut objects = Vec::with_capacity(resources.len());
    for resource in resources {
        let mut object = ferroflux_kustomize::yaml::emit::to_serde(
            &ferroflux_kustomize::yaml::Value::Map(resource.obj),
        );
        if let Some(vars) = &vars {
            let object_name = object["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            object = postbuild::substitute(&object, vars, strict)
                .map_err(|e| anyhow::anyhow!("var substitution failed for '{object_name}': {e}"))?;
        }
        let labels = &mut object["metadata"]["labels"];
        if !labels.is_object() {
            *labels = json!({});
        }
        labels["kustomize.toolkit.fluxcd.io/name"] = Value::String(name.clone());
        labels["kustomize.toolkit.fluxcd.io/namespace"] = Value::String(namespace.clone());
        if let Some(common) = &ks.spec.common_metadata {
            for (field, values) in [
                ("labels", &common.labels),
                ("annotations", &common.annotations),
            ] {
                for (key, value) in values.iter().flatten() {
                    let map = &mut object["metadata"][field];
                    if !map.is_object() {
                        *map = json!({});
                    }
                    map[key] = Value::String(value.clone());
                }
            }
        }
        objects.push(object);
    }
    Ok(objects)
}

/// The Kustomization's settings over the directory's kustomization file, or over one listing
/// the manifests found, as kustomize-controller generates it: the file and its contents.
fn overlay(fs: &RootedFs, ks: &Kustomization, dir: &Path) -> anyhow::Result<(PathBuf, Vec<u8>)> {
    let (base, discovered, target) = match generator::find_kustomization(fs, dir) {
        Some(file) => {
            let text = std::fs::read_to_string(&file)?;
            let value: Value = ferroflux_gocompat::yaml::from_str(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            (Some(value), Vec::new(), file)
        }
        None => {
            let found = generator::discover_resources(fs, dir)?;
            (
                None,
                found,
                dir.join(generator::KUSTOMIZATION_FILE_NAMES[0]),
            )
        }
    };
    let overlay = generator::overlay(base, &discovered, &ks.spec).map_err(anyhow::Error::msg)?;
    Ok((target, serde_saphyr::to_string(&overlay)?.into_bytes()))
}

/// The postBuild variables, or `None` when nothing is to be substituted (flux substitutes
/// only with variables unless `substituteStrategy: Always`). Without a cluster (`--dry-run`)
/// `substituteFrom` is left out, as flux's dry run does.
async fn variables(
    ks: &Kustomization,
    client: Option<&kube::Client>,
) -> anyhow::Result<Option<BTreeMap<String, String>>> {
    let Some(post_build) = &ks.spec.post_build else {
        return Ok(None);
    };
    let namespace = ks.metadata.namespace.clone().unwrap_or_default();
    let mut sources = Vec::new();
    for from in post_build.substitute_from.iter().flatten() {
        let Some(client) = client else { break };
        let resource = ApiResource::from_gvk(&GroupVersionKind::gvk("", "v1", &from.kind));
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &namespace, &resource);
        let Some(object) = api.get_opt(&from.name).await? else {
            if from.optional == Some(true) {
                continue;
            }
            bail!("substitute from '{}/{}': not found", from.kind, from.name);
        };
        let mut vars = BTreeMap::new();
        for (key, value) in object.data["data"].as_object().into_iter().flatten() {
            let Some(text) = value.as_str() else { continue };
            let text = if from.kind == "Secret" {
                let bytes: k8s_openapi::ByteString = serde_json::from_value(Value::String(
                    text.trim().to_string(),
                ))
                .with_context(|| format!("Secret/{}: key {key} is not base64", from.name))?;
                String::from_utf8_lossy(&bytes.0).into_owned()
            } else {
                text.to_string()
            };
            vars.insert(key.clone(), text);
        }
        sources.push(vars);
    }
    let vars = postbuild::collect_variables(sources, post_build.substitute.as_ref())?;
    let always = post_build.substitute_strategy.as_deref() == Some("Always");
    Ok((always || !vars.is_empty()).then_some(vars))
}
