//! The CustomResourceDefinitions ferroflux serves, generated from the types of this crate.

use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use kube::CustomResourceExt;

use crate::{
    artifactgenerator, flagger, helm, image, kustomize, kyverno, notification, source, wgpolicy,
};

/// The labels Flux's install gives every CRD and controller (`app.kubernetes.io/part-of:
/// flux`, the instance, the version), which `flux check`, `flux version` and monitoring
/// select on; the version is ferroflux's, so `flux version` reports `flux-v<ferroflux>`.
pub fn distribution_labels() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/part-of".to_string(), "flux".to_string()),
        (
            "app.kubernetes.io/instance".to_string(),
            "flux-system".to_string(),
        ),
        (
            "app.kubernetes.io/version".to_string(),
            concat!("v", env!("CARGO_PKG_VERSION")).to_string(),
        ),
    ])
}

/// One served kind: its CRD generator, the versions served besides the storage version, and the
/// Flux component that owns it.
pub struct ServedKind {
    /// Generates the CRD with only the storage version.
    pub crd: fn() -> CustomResourceDefinition,
    /// Older versions served with the same schema (conversion strategy `None`).
    pub older_versions: &'static [&'static str],
    /// The controller that reconciles the kind, as in Flux's `app.kubernetes.io/component`.
    pub component: &'static str,
}

/// Every kind ferroflux serves, in install order.
pub const SERVED_KINDS: &[ServedKind] = &[
    ServedKind {
        crd: source::GitRepository::crd,
        older_versions: &["v1beta2"],
        component: "source-controller",
    },
    ServedKind {
        crd: source::OCIRepository::crd,
        older_versions: &["v1beta2"],
        component: "source-controller",
    },
    ServedKind {
        crd: source::HelmRepository::crd,
        older_versions: &["v1beta2"],
        component: "source-controller",
    },
    ServedKind {
        crd: source::HelmChart::crd,
        older_versions: &["v1beta2"],
        component: "source-controller",
    },
    ServedKind {
        crd: source::Bucket::crd,
        older_versions: &["v1beta2"],
        component: "source-controller",
    },
    ServedKind {
        crd: source::ExternalArtifact::crd,
        older_versions: &[],
        component: "source-controller",
    },
    ServedKind {
        crd: artifactgenerator::ArtifactGenerator::crd,
        older_versions: &[],
        component: "source-watcher",
    },
    ServedKind {
        crd: kustomize::Kustomization::crd,
        older_versions: &[],
        component: "kustomize-controller",
    },
    ServedKind {
        crd: helm::HelmRelease::crd,
        older_versions: &[],
        component: "helm-controller",
    },
    ServedKind {
        crd: image::ImageRepository::crd,
        older_versions: &["v1beta2"],
        component: "image-reflector-controller",
    },
    ServedKind {
        crd: image::ImagePolicy::crd,
        older_versions: &["v1beta2"],
        component: "image-reflector-controller",
    },
    ServedKind {
        crd: image::ImageUpdateAutomation::crd,
        older_versions: &["v1beta2", "v1beta1"],
        component: "image-automation-controller",
    },
    ServedKind {
        crd: notification::Provider::crd,
        older_versions: &[],
        component: "notification-controller",
    },
    ServedKind {
        crd: notification::Alert::crd,
        older_versions: &[],
        component: "notification-controller",
    },
    ServedKind {
        crd: notification::Receiver::crd,
        older_versions: &[],
        component: "notification-controller",
    },
    ServedKind {
        crd: flagger::Canary::crd,
        older_versions: &[],
        component: "flagger",
    },
    ServedKind {
        crd: flagger::MetricTemplate::crd,
        older_versions: &[],
        component: "flagger",
    },
    ServedKind {
        crd: flagger::AlertProvider::crd,
        older_versions: &[],
        component: "flagger",
    },
    ServedKind {
        crd: kyverno::ClusterPolicy::crd,
        older_versions: &["v2beta1"],
        component: "policy-webhook",
    },
    ServedKind {
        crd: kyverno::Policy::crd,
        older_versions: &["v2beta1"],
        component: "policy-webhook",
    },
    ServedKind {
        crd: wgpolicy::policy_report_crd,
        older_versions: &[],
        component: "policy-webhook",
    },
    ServedKind {
        crd: wgpolicy::cluster_policy_report_crd,
        older_versions: &[],
        component: "policy-webhook",
    },
];

impl ServedKind {
    /// The full CRD: every served version (the storage one first) and Flux's labels.
    pub fn definition(&self) -> CustomResourceDefinition {
        let mut crd = (self.crd)();
        // The root description names the kind, not kube's generated wrapper.
        if let Some(root) = crd.spec.versions[0]
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        {
            root.description = root
                .properties
                .as_ref()
                .and_then(|p| p.get("spec"))
                .and_then(|spec| spec.description.clone());
        }
        if let Some(root) = crd.spec.versions[0]
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        {
            drop_nullable(root);
        }
        let storage = crd.spec.versions[0].clone();
        for version in self.older_versions {
            let mut older = storage.clone();
            older.name = (*version).to_string();
            older.storage = false;
            crd.spec.versions.push(older);
        }
        let labels = crd.metadata.labels.get_or_insert_with(BTreeMap::new);
        labels.extend(distribution_labels());
        labels.insert("app.kubernetes.io/component".into(), self.component.into());
        crd
    }

    /// API group of the kind.
    pub fn group(&self) -> String {
        (self.crd)().spec.group
    }

    /// Kind name, e.g. `GitRepository`.
    pub fn kind(&self) -> String {
        (self.crd)().spec.names.kind
    }

    /// The storage version, e.g. `v1`.
    pub fn storage_version(&self) -> String {
        (self.crd)().spec.versions[0].name.clone()
    }

    /// Whether `version` is served for this kind.
    pub fn serves(&self, version: &str) -> bool {
        self.storage_version() == version || self.older_versions.contains(&version)
    }
}

/// Removes `nullable` from every node. kube's derive marks each `Option` field nullable;
/// controller-gen never does, and the difference is behaviour: the API server drops a `null`
/// written into a non-nullable field (or puts its default there) but stores it as `null` in a
/// nullable one.
fn drop_nullable(schema: &mut JSONSchemaProps) {
    schema.nullable = None;
    for child in schema.properties.iter_mut().flat_map(|p| p.values_mut()) {
        drop_nullable(child);
    }
    match &mut schema.items {
        Some(JSONSchemaPropsOrArray::Schema(items)) => drop_nullable(items),
        Some(JSONSchemaPropsOrArray::Schemas(items)) => items.iter_mut().for_each(drop_nullable),
        None => {}
    }
    if let Some(JSONSchemaPropsOrBool::Schema(additional)) = &mut schema.additional_properties {
        drop_nullable(additional);
    }
    for branch in [&mut schema.any_of, &mut schema.one_of, &mut schema.all_of]
        .into_iter()
        .flatten()
    {
        branch.iter_mut().for_each(drop_nullable);
    }
    if let Some(not) = &mut schema.not {
        drop_nullable(not);
    }
}

/// Every CRD ferroflux serves, in install order.
pub fn all() -> Vec<CustomResourceDefinition> {
    SERVED_KINDS.iter().map(ServedKind::definition).collect()
}

/// The served kind with this API group and kind name.
pub fn find(group: &str, kind: &str) -> Option<&'static ServedKind> {
    SERVED_KINDS
        .iter()
        .find(|served| served.group() == group && served.kind() == kind)
}
