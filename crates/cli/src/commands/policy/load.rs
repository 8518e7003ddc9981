//! Reading Kyverno CLI tests (`cli.kyverno.io/v1alpha1` `Test` and `Values`) and the files
//! they name, and the engine request Kyverno's CLI makes for one policy and one resource.
//!
//! The test schema is decoded strictly: a field this engine cannot honour (`exceptions`,
//! `userinfo`, `patchedResources`, `generatedResource`, `foreachValues`, ...) is an error
//! naming it, never a silently ignored expectation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use ferroflux_kustomize::resource::Gvk;
use ferroflux_policy::Request;
use serde::Deserialize;
use serde_json::Value;

/// The API group/version of Kyverno's CLI test files.
const CLI_API_VERSION: &str = "cli.kyverno.io/v1alpha1";

/// One `kyverno-test.yaml` document.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Test {
    api_version: Option<String>,
    kind: Option<String>,
    /// Declared so strict decoding accepts it; nothing reads it.
    #[allow(dead_code)]
    metadata: Option<Value>,
    /// The pre-`v1alpha1` test name; its presence marks the deprecated schema.
    name: Option<String>,
    /// Policy files, relative to the test's directory.
    #[serde(default)]
    pub policies: Vec<String>,
    /// Resource files, relative to the test's directory.
    #[serde(default)]
    pub resources: Vec<String>,
    /// A `Values` file, relative to the test's directory.
    pub variables: Option<String>,
    /// Inline values; a `variables` file is then not read.
    pub values: Option<Values>,
    /// The expected results.
    #[serde(default)]
    pub results: Vec<TestResult>,
}

impl Test {
    /// Kyverno refuses tests without `apiVersion`/`kind` or with the old top-level `name`.
    pub fn deprecated(&self) -> bool {
        self.api_version.as_deref().is_none_or(str::is_empty)
            || self.kind.as_deref().is_none_or(str::is_empty)
            || self.name.is_some()
    }
}

/// One expected result.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestResult {
    /// The policy's name (`namespace/name` for a Policy).
    pub policy: String,
    /// The rule's name (autogen rules answer to it too).
    #[serde(default)]
    pub rule: String,
    /// Names (or `namespace/name`) of the resources.
    pub resources: Option<Vec<String>>,
    /// Deprecated single resource name.
    pub resource: Option<String>,
    /// The resources' kind.
    #[serde(default)]
    pub kind: String,
    /// Only resources of this namespace.
    #[serde(default)]
    pub namespace: String,
    /// `pass`, `fail`, `warn`, `error` or `skip`.
    #[serde(default)]
    pub result: String,
    /// Deprecated name of `result`.
    #[serde(default)]
    status: String,
}

impl TestResult {
    /// The expected result, from `result` or the deprecated `status`.
    pub fn expected(&self) -> &str {
        if self.result.is_empty() {
            &self.status
        } else {
            &self.result
        }
    }

    /// The resource names this result is about.
    pub fn resource_names(&self) -> Vec<String> {
        match (&self.resources, &self.resource) {
            (Some(names), _) => names.clone(),
            (None, Some(name)) => vec![name.clone()],
            (None, None) => Vec::new(),
        }
    }
}

/// Values a test gives the policies: Kyverno's `Values` (`ValuesSpec`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Values {
    api_version: Option<String>,
    kind: Option<String>,
    /// Declared so strict decoding accepts it; nothing reads it.
    #[allow(dead_code)]
    metadata: Option<Value>,
    #[serde(default)]
    global_values: BTreeMap<String, Value>,
    #[serde(default)]
    policies: Vec<PolicyValues>,
    #[serde(default)]
    namespace_selector: Vec<NamespaceLabels>,
    #[serde(default)]
    namespaces: Vec<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyValues {
    name: String,
    #[serde(default)]
    rules: Vec<NamedValues>,
    #[serde(default)]
    resources: Vec<NamedValues>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NamedValues {
    name: String,
    #[serde(default)]
    values: BTreeMap<String, Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NamespaceLabels {
    name: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// Every file named `file_name` under `dir`, depth first in name order as Kyverno walks;
/// symbolic links are not followed.
pub fn find_tests(dir: &Path, file_name: &str) -> anyhow::Result<Vec<PathBuf>> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("open {}", dir.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("read {}", dir.display()))?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    let mut found = Vec::new();
    for entry in entries {
        let kind = entry.file_type()?;
        if kind.is_dir() {
            found.extend(find_tests(&entry.path(), file_name)?);
        } else if entry.file_name() == file_name {
            found.push(entry.path());
        }
    }
    Ok(found)
}

/// The YAML documents of one file (empty documents dropped).
pub fn documents(path: &Path) -> anyhow::Result<Vec<Value>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let docs: Vec<Value> = ferroflux_gocompat::yaml::from_multiple(&text)
        .with_context(|| format!("parse {}", path.display()))?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// The tests of one `kyverno-test.yaml`.
pub fn tests(path: &Path) -> anyhow::Result<Vec<Test>> {
    documents(path)?
        .into_iter()
        .map(|doc| {
            serde_json::from_value(doc).with_context(|| format!("decode {}", path.display()))
        })
        .collect()
}

/// The test's values: inline, else its `variables` file, else none.
pub fn values(test: Test, dir: &Path) -> anyhow::Result<(Test, Values)> {
    let mut test = test;
    if let Some(values) = test.values.take() {
        return Ok((test, values));
    }
    let Some(file) = &test.variables else {
        return Ok((test, Values::default()));
    };
    let path = dir.join(file);
    let mut docs = documents(&path)?;
    if docs.len() != 1 {
        bail!("{}: expected one Values document", path.display());
    }
    let values: Values = serde_json::from_value(docs.remove(0))
        .with_context(|| format!("unable to load variable file: {file}"))?;
    if values.api_version.as_deref() != Some(CLI_API_VERSION) || values.kind.is_none() {
        bail!("values file {file} uses a deprecated schema — please migrate to the latest format");
    }
    Ok((test, values))
}

/// The resources of the test's files, each namespaced kind without a namespace put in
/// `default` as the Kyverno CLI does.
pub fn resources(test: &Test, dir: &Path) -> anyhow::Result<Vec<Value>> {
    let mut all = Vec::new();
    for file in &test.resources {
        for mut resource in documents(&dir.join(file))? {
            default_namespace(&mut resource);
            all.push(resource);
        }
    }
    Ok(all)
}

fn default_namespace(resource: &mut Value) {
    let gvk = Gvk::from_api_version(
        resource["apiVersion"].as_str().unwrap_or_default(),
        resource["kind"].as_str().unwrap_or_default(),
    );
    let has_namespace = resource
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    if !has_namespace
        && !gvk.is_cluster_scoped()
        && let Some(Value::Object(meta)) = resource.get_mut("metadata")
    {
        meta.insert("namespace".into(), Value::from("default"));
    }
}

/// The policy documents of the test's files.
pub fn policies(test: &Test, dir: &Path) -> anyhow::Result<Vec<Value>> {
    let mut all = Vec::new();
    for file in &test.policies {
        all.extend(documents(&dir.join(file))?);
    }
    Ok(all)
}

impl Values {
    /// The request the Kyverno CLI evaluates `policy` (its name) with on `resource`: global
    /// values, then the policy's rule values, then the resource's own values; the
    /// `request.operation` they set (CREATE by default, DELETE puts the resource in
    /// `oldObject`); the labels of the resource's namespace.
    pub fn request(&self, policy: &str, resource: &Value) -> Request {
        let name = resource["metadata"]["name"].as_str().unwrap_or_default();
        let mut variables = self.global_values.clone();
        for entry in self.policies.iter().filter(|p| p.name == policy) {
            for rule in &entry.rules {
                variables.extend(rule.values.clone());
            }
            for named in entry.resources.iter().filter(|r| r.name == name) {
                variables.extend(named.values.clone());
            }
        }
        let namespace = resource["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default();
        Request::offline(resource, variables, self.namespace_labels(namespace))
    }

    /// Labels of a namespace from `namespaces` (Namespace objects) or `namespaceSelector`.
    fn namespace_labels(&self, namespace: &str) -> BTreeMap<String, String> {
        let object = self
            .namespaces
            .iter()
            .find(|n| n["metadata"]["name"].as_str() == Some(namespace));
        if let Some(Value::Object(labels)) = object.map(|n| &n["metadata"]["labels"]) {
            return labels
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect();
        }
        self.namespace_selector
            .iter()
            .find(|n| n.name == namespace)
            .map(|n| n.labels.clone())
            .unwrap_or_default()
    }
}
