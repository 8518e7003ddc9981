//! Post-build variable substitution, as Flux's kustomize-controller does it: variables come
//! from `substituteFrom` ConfigMaps and Secrets in order, then `substitute` (which wins); each
//! built object is rendered to YAML, substituted, and parsed back, so `replicas: ${n}` becomes
//! a number; objects labelled or annotated `kustomize.toolkit.fluxcd.io/substitute: disabled`
//! are left alone.

use std::collections::BTreeMap;

use ferroflux_api::kustomize::annotation::SUBSTITUTE;
use serde_json::Value;

/// Why substitution failed.
#[derive(Debug, thiserror::Error)]
pub enum PostBuildError {
    /// A variable name Flux refuses.
    #[error(transparent)]
    InvalidName(ferroflux_envsubst::Error),
    /// Substitution of one object failed.
    #[error("variable substitution failed for {object}: {source}")]
    Substitution {
        /// `Kind/namespace/name` of the object.
        object: String,
        /// What envsubst said.
        #[source]
        source: ferroflux_envsubst::Error,
    },
    /// The substituted object is no longer valid YAML.
    #[error("variable substitution made {object} invalid YAML: {reason}")]
    InvalidResult {
        /// `Kind/namespace/name` of the object.
        object: String,
        /// The parser's message.
        reason: String,
    },
}

/// Merges the variables of `substituteFrom` sources (in order, later wins) and the inline
/// `substitute` map (wins over all), checking every name. Like Flux, values lose their line
/// breaks, so a value read from a file with a trailing newline substitutes inline.
pub fn collect_variables(
    sources: impl IntoIterator<Item = BTreeMap<String, String>>,
    inline: Option<&BTreeMap<String, String>>,
) -> Result<BTreeMap<String, String>, PostBuildError> {
    let mut vars = BTreeMap::new();
    for source in sources {
        vars.extend(source);
    }
    if let Some(inline) = inline {
        vars.extend(inline.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    for value in vars.values_mut() {
        value.retain(|c| c != '\n');
    }
    for name in vars.keys() {
        ferroflux_envsubst::validate_var_name(name).map_err(PostBuildError::InvalidName)?;
    }
    Ok(vars)
}

fn disabled(object: &Value) -> bool {
    ["labels", "annotations"]
        .iter()
        .any(|field| object["metadata"][field][SUBSTITUTE] == "disabled")
}

fn describe(object: &Value) -> String {
    let kind = object["kind"].as_str().unwrap_or("<kind>");
    let name = object["metadata"]["name"].as_str().unwrap_or("<name>");
    match object["metadata"]["namespace"].as_str() {
        Some(ns) => format!("{kind}/{ns}/{name}"),
        None => format!("{kind}/{name}"),
    }
}

/// Substitutes `vars` into one built object.
pub fn substitute(
    object: &Value,
    vars: &BTreeMap<String, String>,
    strict: bool,
) -> Result<Value, PostBuildError> {
    if disabled(object) {
        return Ok(object.clone());
    }
    let yaml = serde_saphyr::to_string(object).map_err(|e| PostBuildError::InvalidResult {
        object: describe(object),
        reason: e.to_string(),
    })?;
    if !yaml.contains("${") && !yaml.contains("$$") {
        return Ok(object.clone());
    }
    let lookup = |name: &str| vars.get(name).cloned();
    let substituted = ferroflux_envsubst::eval(&yaml, &lookup, strict).map_err(|source| {
        PostBuildError::Substitution {
            object: describe(object),
            source,
        }
    })?;
    ferroflux_gocompat::yaml::from_str(&substituted).map_err(|e| PostBuildError::InvalidResult {
        object: describe(object),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn values_are_substituted_and_typed_by_yaml() {
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "podinfo-${cluster_env:=dev}", "namespace": "apps"},
            "spec": {"replicas": "${replicas}", "template": {"spec": {"containers": [
                {"name": "app", "image": "podinfo:${tag:-latest}",
                 "args": ["--msg=$${not_a_var}", "echo $HOME"]}]}}}});
        let out = substitute(
            &deployment,
            &vars(&[("replicas", "3"), ("cluster_env", "prod")]),
            false,
        )
        .expect("substitutes");
        assert_eq!(out["metadata"]["name"], "podinfo-prod");
        assert_eq!(
            out["spec"]["replicas"], 3,
            "a substituted number is a number"
        );
        let container = &out["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["image"], "podinfo:latest");
        assert_eq!(
            container["args"],
            json!(["--msg=${not_a_var}", "echo $HOME"])
        );
    }

    #[test]
    fn variables_that_build_an_alias_bomb_are_refused_quickly() {
        let levels = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
        let mut data = serde_json::Map::new();
        let mut values = vec![(
            "a".to_string(),
            "&a [lol,lol,lol,lol,lol,lol,lol,lol,lol]".to_string(),
        )];
        for pair in levels.windows(2) {
            let refs = vec![format!("*{}", pair[0]); 9].join(",");
            values.push((pair[1].to_string(), format!("&{} [{refs}]", pair[1])));
        }
        for level in levels {
            data.insert(level.to_string(), json!(format!("${{{level}}}")));
        }
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "bomb", "namespace": "apps"}, "data": data});
        let start = std::time::Instant::now();
        let err = substitute(&cm, &values.into_iter().collect(), false).expect_err("bomb");
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
        assert!(
            err.to_string()
                .ends_with("yaml: document contains excessive aliasing"),
            "{err}"
        );
    }

    #[test]
    fn disabled_objects_are_left_alone() {
        let script = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "script", "annotations": {SUBSTITUTE: "disabled"}},
            "data": {"run.sh": "echo ${HOME}"}});
        assert_eq!(
            substitute(&script, &vars(&[("HOME", "x")]), true).expect("skipped"),
            script
        );
    }

    #[test]
    fn strict_mode_names_the_object_and_the_variable() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": "apps"}, "data": {"region": "${region}"}});
        let err = substitute(&cm, &vars(&[]), true).expect_err("strict");
        assert_eq!(
            err.to_string(),
            "variable substitution failed for ConfigMap/apps/settings: variable not set (strict mode): region"
        );
        // Like Flux: an unset variable leaves `region: ` behind, which YAML reads as null.
        let lax = substitute(&cm, &vars(&[]), false).expect("lax");
        assert!(lax["data"]["region"].is_null());
    }

    #[test]
    fn inline_variables_win_and_bad_names_are_refused() {
        let merged = collect_variables(
            [
                vars(&[("a", "from-cm"), ("b", "from-cm")]),
                vars(&[("b", "from-secret")]),
            ],
            Some(&vars(&[("a", "inline")])),
        )
        .expect("valid names");
        assert_eq!(merged, vars(&[("a", "inline"), ("b", "from-secret")]));
        let joined =
            collect_variables([vars(&[("key", "line1\nline2\n")])], None).expect("valid names");
        assert_eq!(
            joined,
            vars(&[("key", "line1line2")]),
            "line breaks are dropped"
        );
        let err = collect_variables([vars(&[("cluster-name", "x")])], None).expect_err("invalid");
        assert!(
            err.to_string()
                .contains("'cluster-name' var name is invalid"),
            "{err}"
        );
    }
}
