//! The commit message: Flux's template data model built from the setter changes, rendered
//! with our Go `text/template` engine (plus Sprig, as Flux's controller has it).
//!
//! The data, as Flux documents it for `git.commit.messageTemplate`:
//! - `.AutomationObject`: the automation (`.Name`, `.Namespace`; prints `namespace/name`);
//! - `.Changed.FileChanges`: file -> object -> changes; `.Changed.Objects`: object ->
//!   changes; `.Changed.Changes`: every distinct change; a change has `.OldValue`,
//!   `.NewValue`, `.Setter`;
//! - `.Updated` (v1beta1 model, kept for old templates): `.Files` (file -> `.Objects`),
//!   `.Objects` (object -> images) and `.Images`; an image prints as its full reference and
//!   has `.Repository`, `.Registry`, `.Identifier`, `.Name` and `.Policy`;
//! - `.Values`: `git.commit.messageTemplateValues`.
//!
//! Objects are map keys; our engine's maps are keyed by strings, so an object key is its Go
//! `%v` form (`{{apps/v1 Deployment} {name namespace}}`) and sorts as Go sorts the structs
//! for the common case; `$obj.Kind` on a key is not available (see the report of issue 8).

use std::collections::BTreeMap;
use std::sync::Arc;

use ferroflux_gotemplate::{HostObject, Map, Sources, Template, Value, sprig_funcs};
use ferroflux_image::setters::{Change, ObjectId};

/// Flux's message when `messageTemplate` is empty.
pub const DEFAULT_MESSAGE_TEMPLATE: &str = "Update from image update automation";

/// The latest image of a policy that took part in the update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyImage {
    /// Policy namespace.
    pub namespace: String,
    /// Policy name.
    pub name: String,
    /// Image name (registry and repository).
    pub image: String,
    /// Tag.
    pub tag: String,
    /// Digest, when reflected.
    pub digest: Option<String>,
}

/// Everything the template sees.
#[derive(Debug, Clone, Default)]
pub struct MessageData {
    /// Automation namespace.
    pub namespace: String,
    /// Automation name.
    pub name: String,
    /// The setter changes, in file order.
    pub changes: Vec<Change>,
    /// Images by policy (`NS:NAME`).
    pub policies: BTreeMap<String, PolicyImage>,
    /// `messageTemplateValues`.
    pub values: BTreeMap<String, String>,
}

/// Renders `template` (or Flux's default message) over `data`.
///
/// # Errors
/// The engine's parse or execution error, as text (it names the line and column).
pub fn render(template: Option<&str>, data: &MessageData) -> Result<String, String> {
    let text = template
        .filter(|t| !t.trim().is_empty())
        .unwrap_or(DEFAULT_MESSAGE_TEMPLATE);
    let sources = Sources {
        now: Some(Arc::new(|| jiff::Timestamp::now().as_second())),
        ..Sources::default()
    };
    let mut engine = Template::with_funcs(sprig_funcs(&sources));
    engine
        .parse("commit message", text)
        .map_err(|e| e.to_string())?;
    engine
        .execute("commit message", &to_value(data))
        .map_err(|e| e.to_string())
}

/// Go's `%v` of kyaml's `ResourceIdentifier`.
fn object_key(o: &ObjectId) -> String {
    format!(
        "{{{{{} {}}} {{{} {}}}}}",
        o.api_version, o.kind, o.name, o.namespace
    )
}

fn change_value(c: &Change) -> Value {
    let mut m = Map::new();
    m.insert("OldValue".into(), Value::str(&c.old_value));
    m.insert("NewValue".into(), Value::str(&c.new_value));
    m.insert("Setter".into(), Value::str(&c.setter));
    Value::map(m)
}

/// The policy a setter names: `NS:NAME` of `NS:NAME[:part]`.
fn setter_policy(setter: &str) -> &str {
    match setter.match_indices(':').nth(1) {
        Some((i, _)) => &setter[..i],
        None => setter,
    }
}

fn to_value(data: &MessageData) -> Value {
    // file -> object -> changes, keeping file order of the changes.
    let mut files: BTreeMap<&str, BTreeMap<String, Vec<&Change>>> = BTreeMap::new();
    let mut objects: BTreeMap<String, Vec<&Change>> = BTreeMap::new();
    let mut distinct: Vec<&Change> = Vec::new();
    let mut images_by_file: BTreeMap<&str, BTreeMap<String, Vec<Value>>> = BTreeMap::new();
    let mut images_by_object: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut images: Vec<Value> = Vec::new();
    let mut seen_images: Vec<String> = Vec::new();
    for change in &data.changes {
        let key = object_key(&change.object);
        files
            .entry(change.file.as_str())
            .or_default()
            .entry(key.clone())
            .or_default()
            .push(change);
        objects.entry(key.clone()).or_default().push(change);
        let same = |c: &&Change| {
            c.old_value == change.old_value
                && c.new_value == change.new_value
                && c.setter == change.setter
        };
        if !distinct.iter().any(same) {
            distinct.push(change);
        }
        if let Some(policy) = data.policies.get(setter_policy(&change.setter)) {
            let image = ImageRefObject::new(policy);
            let reference = image.display();
            let in_object = images_by_object.entry(key.clone()).or_default();
            if !in_object.iter().any(|v| v.as_display() == reference) {
                in_object.push(Value::Object(Arc::new(image.clone())));
            }
            let in_file = images_by_file
                .entry(change.file.as_str())
                .or_default()
                .entry(key)
                .or_default();
            if !in_file.iter().any(|v| v.as_display() == reference) {
                in_file.push(Value::Object(Arc::new(image.clone())));
            }
            if !seen_images.contains(&reference) {
                seen_images.push(reference);
                images.push(Value::Object(Arc::new(image)));
            }
        }
    }
    let changes_map = |m: BTreeMap<String, Vec<&Change>>| {
        Value::map(
            m.into_iter()
                .map(|(k, v)| {
                    (
                        k.into(),
                        Value::list(v.into_iter().map(change_value).collect()),
                    )
                })
                .collect(),
        )
    };
    let file_changes = Value::map(
        files
            .into_iter()
            .map(|(f, objs)| (f.into(), changes_map(objs)))
            .collect(),
    );
    let images_map = |m: BTreeMap<String, Vec<Value>>| {
        Value::map(
            m.into_iter()
                .map(|(k, v)| (k.into(), Value::list(v)))
                .collect(),
        )
    };
    let mut updated = Map::new();
    updated.insert(
        "Files".into(),
        Value::map(
            images_by_file
                .into_iter()
                .map(|(f, objs)| {
                    let mut file = Map::new();
                    file.insert("Objects".into(), images_map(objs));
                    (f.into(), Value::map(file))
                })
                .collect(),
        ),
    );
    updated.insert("Objects".into(), images_map(images_by_object));
    updated.insert("Images".into(), Value::list(images));
    let updated = Value::map(updated);

    let mut changed = Map::new();
    changed.insert("FileChanges".into(), file_changes);
    changed.insert("Objects".into(), changes_map(objects));
    changed.insert(
        "Changes".into(),
        Value::list(distinct.into_iter().map(change_value).collect()),
    );
    changed.insert("ImageResult".into(), updated.clone());

    let mut root = Map::new();
    root.insert(
        "AutomationObject".into(),
        Value::Object(Arc::new(NamespacedName {
            namespace: data.namespace.clone(),
            name: data.name.clone(),
        })),
    );
    root.insert("Changed".into(), Value::map(changed));
    root.insert("Updated".into(), updated);
    root.insert(
        "Values".into(),
        Value::map(
            data.values
                .iter()
                .map(|(k, v)| (k.as_str().into(), Value::str(v)))
                .collect(),
        ),
    );
    Value::map(root)
}

trait DisplayValue {
    fn as_display(&self) -> String;
}

impl DisplayValue for Value {
    fn as_display(&self) -> String {
        match self {
            Value::Object(o) => o.display(),
            other => format!("{other:?}"),
        }
    }
}

/// Go's `types.NamespacedName`.
#[derive(Debug, Clone)]
struct NamespacedName {
    namespace: String,
    name: String,
}

impl HostObject for NamespacedName {
    fn type_name(&self) -> String {
        "types.NamespacedName".into()
    }

    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "Name" => Some(Value::str(&self.name)),
            "Namespace" => Some(Value::str(&self.namespace)),
            "String" => Some(Value::str(self.display())),
            _ => None,
        }
    }

    fn display(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// An image of the v1beta1 `.Updated` model.
#[derive(Debug, Clone)]
struct ImageRefObject {
    policy: NamespacedName,
    registry: String,
    repository: String,
    tag: String,
    reference: String,
}

impl ImageRefObject {
    fn new(p: &PolicyImage) -> Self {
        let (registry, repository) = match p.image.split_once('/') {
            Some((host, rest))
                if host.contains('.') || host.contains(':') || host == "localhost" =>
            {
                (host.to_string(), rest.to_string())
            }
            _ => (
                crate::imagerepository::DOCKER_HUB.to_string(),
                if p.image.contains('/') {
                    p.image.clone()
                } else {
                    format!("library/{}", p.image)
                },
            ),
        };
        let mut reference = format!("{}:{}", p.image, p.tag);
        if let Some(d) = &p.digest {
            reference.push('@');
            reference.push_str(d);
        }
        ImageRefObject {
            policy: NamespacedName {
                namespace: p.namespace.clone(),
                name: p.name.clone(),
            },
            registry,
            repository,
            tag: p.tag.clone(),
            reference,
        }
    }
}

impl HostObject for ImageRefObject {
    fn type_name(&self) -> String {
        "update.imageRef".into()
    }

    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "String" | "Name" => Some(Value::str(&self.reference)),
            "Repository" => Some(Value::str(&self.repository)),
            "Registry" => Some(Value::str(&self.registry)),
            "Identifier" => Some(Value::str(&self.tag)),
            "Policy" => Some(Value::Object(Arc::new(self.policy.clone()))),
            _ => None,
        }
    }

    fn display(&self) -> String {
        self.reference.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(file: &str, name: &str, old: &str, new: &str) -> Change {
        Change {
            file: file.into(),
            object: ObjectId {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                name: name.into(),
                namespace: "team-a".into(),
            },
            setter: "team-a:podinfo".into(),
            old_value: old.into(),
            new_value: new.into(),
            line: 1,
            range: 0..0,
            replacement: String::new(),
        }
    }

    fn data() -> MessageData {
        let mut policies = BTreeMap::new();
        policies.insert(
            "team-a:podinfo".to_string(),
            PolicyImage {
                namespace: "team-a".into(),
                name: "podinfo".into(),
                image: "127.0.0.1:5000/team-a/podinfo".into(),
                tag: "main-def456-1718000100".into(),
                digest: None,
            },
        );
        MessageData {
            namespace: "flux-system".into(),
            name: "team-a".into(),
            changes: vec![
                change("apps/b.yaml", "web", "r:1", "r:2"),
                change("apps/a.yaml", "api", "r:1", "r:2"),
            ],
            policies,
            values: [("env".to_string(), "prod".to_string())]
                .into_iter()
                .collect(),
        }
    }

    #[test]
    fn default_message_when_no_template() {
        assert_eq!(
            render(None, &data()).as_deref(),
            Ok(DEFAULT_MESSAGE_TEMPLATE)
        );
        assert_eq!(
            render(Some("  "), &data()).as_deref(),
            Ok(DEFAULT_MESSAGE_TEMPLATE)
        );
    }

    #[test]
    fn flux_data_model_renders() {
        let template = "Automated image update by {{ .AutomationObject }} ({{ .AutomationObject.Name }})\n\
{{ range $file, $objs := .Changed.FileChanges }}- {{ $file }}\n{{ end -}}\
{{ range .Changed.Changes }}{{ .OldValue }} -> {{ .NewValue }} [{{ .Setter }}]\n{{ end -}}\
{{ len .Changed.Objects }} objects; env={{ .Values.env | upper }}";
        let got = render(Some(template), &data()).expect("renders");
        assert_eq!(
            got,
            "Automated image update by flux-system/team-a (team-a)\n\
- apps/a.yaml\n- apps/b.yaml\n\
r:1 -> r:2 [team-a:podinfo]\n\
2 objects; env=PROD"
        );
    }

    #[test]
    fn v1beta1_updated_model_renders() {
        let template = "{{ range .Updated.Images }}{{ . }} {{ .Repository }} {{ .Identifier }} {{ .Policy.Name }}\n{{ end }}{{ range $f, $_ := .Updated.Files }}{{ $f }};{{ end }}";
        let got = render(Some(template), &data()).expect("renders");
        assert_eq!(
            got,
            "127.0.0.1:5000/team-a/podinfo:main-def456-1718000100 team-a/podinfo main-def456-1718000100 podinfo\napps/a.yaml;apps/b.yaml;"
        );
    }

    #[test]
    fn template_errors_are_reported() {
        let err = render(Some("{{ .Changed.Nope.Deeper }"), &data()).expect_err("bad template");
        assert!(err.contains("commit message"), "{err}");
    }
}
