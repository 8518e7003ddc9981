//! `ferroflux create alert|alert-provider|receiver`: the notification objects `flux create`
//! generates (Alert and Provider in v1beta3, Receiver in v1), checked in flux's order and words.

use std::process::ExitCode;

use anyhow::bail;
use clap::Args;
use serde_json::{Value, json};

use super::CreateArgs;
use super::object::{self, Generated};

/// Create or update an Alert.
#[derive(Debug, Args)]
pub struct AlertArgs {
    /// The Alert's name.
    name: Option<String>,
    /// Reference to provider.
    #[arg(long, default_value = "")]
    provider_ref: String,
    /// Severity of events to send alerts for.
    #[arg(long, default_value = "")]
    event_severity: String,
    /// Sources that should generate alerts (`<kind>/<name>[.<namespace>]`), also accepts
    /// comma-separated values.
    #[arg(long = "event-source", value_delimiter = ',')]
    event_sources: Vec<String>,
}

/// Create or update a Provider.
#[derive(Debug, Args)]
pub struct ProviderArgs {
    /// The Provider's name.
    name: Option<String>,
    /// Type of provider.
    #[arg(long = "type", default_value = "")]
    provider_type: String,
    /// Channel to send messages to in the case of a chat provider.
    #[arg(long, default_value = "")]
    channel: String,
    /// Bot username used by the provider.
    #[arg(long, default_value = "")]
    username: String,
    /// Path to either the git repository, chat provider or webhook.
    #[arg(long, default_value = "")]
    address: String,
    /// Name of secret containing authentication token.
    #[arg(long, default_value = "")]
    secret_ref: String,
}

/// Create or update a Receiver.
#[derive(Debug, Args)]
pub struct ReceiverArgs {
    /// The Receiver's name.
    name: Option<String>,
    /// The receiver type (generic, generic-hmac, github, gitlab, bitbucket, harbor, dockerhub,
    /// quay, gcr, nexus, acr, cdevents).
    #[arg(long = "type", default_value = "")]
    receiver_type: String,
    /// Name of the secret holding the webhook token.
    #[arg(long, default_value = "")]
    secret_ref: String,
    /// Events to accept, also accepts comma-separated values.
    #[arg(long = "event", value_delimiter = ',')]
    events: Vec<String>,
    /// Objects to reconcile (`<kind>/<name>`), also accepts comma-separated values.
    #[arg(long = "resource", value_delimiter = ',')]
    resources: Vec<String>,
}

/// The Receiver types flux's `--type` flag accepts, in its order.
const RECEIVER_TYPES: &[&str] = &[
    "generic",
    "generic-hmac",
    "github",
    "gitlab",
    "bitbucket",
    "harbor",
    "dockerhub",
    "quay",
    "gcr",
    "nexus",
    "acr",
    "cdevents",
];

const ALERT: Generated = Generated {
    group: ferroflux_api::notification::GROUP,
    version: "v1beta3",
    kind: "Alert",
    plural: "alerts",
};

const PROVIDER: Generated = Generated {
    group: ferroflux_api::notification::GROUP,
    version: "v1beta3",
    kind: "Provider",
    plural: "providers",
};

const RECEIVER: Generated = Generated {
    group: ferroflux_api::notification::GROUP,
    version: "v1",
    kind: "Receiver",
    plural: "receivers",
};

fn api_version(generated: Generated) -> String {
    format!("{}/{}", generated.group, generated.version)
}

pub fn run_alert(args: &AlertArgs, create: &CreateArgs) -> anyhow::Result<ExitCode> {
    object::finish(ALERT, &alert(args, create)?, create)
}

pub fn run_provider(args: &ProviderArgs, create: &CreateArgs) -> anyhow::Result<ExitCode> {
    object::finish(PROVIDER, &provider(args, create)?, create)
}

pub fn run_receiver(args: &ReceiverArgs, create: &CreateArgs) -> anyhow::Result<ExitCode> {
    object::finish(RECEIVER, &receiver(args, create)?, create)
}

fn alert(args: &AlertArgs, create: &CreateArgs) -> anyhow::Result<Value> {
    let name = object::checked_name(args.name.as_deref())?;
    if args.provider_ref.is_empty() {
        bail!("provider ref is required");
    }
    let mut sources = Vec::new();
    for source in &args.event_sources {
        let (kind, name, namespace) = object::kind_name_namespace(source);
        if kind.is_empty() {
            bail!("invalid event source '{source}', must be in format <kind>/<name>");
        }
        sources.push(object::reference(kind, name, namespace));
    }
    if sources.is_empty() {
        bail!("at least one event source is required");
    }
    let mut spec = json!({"eventSources": sources, "providerRef": {"name": args.provider_ref}});
    if !args.event_severity.is_empty() {
        spec["eventSeverity"] = json!(args.event_severity);
    }
    Ok(json!({"apiVersion": api_version(ALERT), "kind": ALERT.kind,
        "metadata": object::metadata(name, create)?, "spec": spec}))
}

fn provider(args: &ProviderArgs, create: &CreateArgs) -> anyhow::Result<Value> {
    let name = object::checked_name(args.name.as_deref())?;
    if args.provider_type.is_empty() {
        bail!("Provider type is required");
    }
    let mut spec = json!({"type": args.provider_type});
    for (field, value) in [
        ("channel", &args.channel),
        ("username", &args.username),
        ("address", &args.address),
    ] {
        if !value.is_empty() {
            spec[field] = json!(value);
        }
    }
    if !args.secret_ref.is_empty() {
        spec["secretRef"] = json!({"name": args.secret_ref});
    }
    Ok(
        json!({"apiVersion": api_version(PROVIDER), "kind": PROVIDER.kind,
        "metadata": object::metadata(name, create)?, "spec": spec}),
    )
}

fn receiver(args: &ReceiverArgs, create: &CreateArgs) -> anyhow::Result<Value> {
    // The flag is checked when cobra parses it, before the NAME.
    if !args.receiver_type.is_empty() && !RECEIVER_TYPES.contains(&args.receiver_type.as_str()) {
        bail!(
            "invalid argument {:?} for \"--type\" flag: receiver type '{}' is not supported, must be one of: {}",
            args.receiver_type,
            args.receiver_type,
            RECEIVER_TYPES.join(", ")
        );
    }
    let name = object::checked_name(args.name.as_deref())?;
    if args.receiver_type.is_empty() {
        bail!("Receiver type is required");
    }
    if args.secret_ref.is_empty() {
        bail!("secret ref is required");
    }
    let mut resources = Vec::new();
    for resource in &args.resources {
        let (kind, name) = object::kind_name(resource);
        if kind.is_empty() {
            bail!("invalid event source '{resource}', must be in format <kind>/<name>");
        }
        resources.push(object::reference(kind, name, ""));
    }
    if resources.is_empty() {
        bail!("atleast one resource is required");
    }
    let mut spec = json!({"type": args.receiver_type, "resources": resources,
        "secretRef": {"name": args.secret_ref}});
    if !args.events.is_empty() {
        spec["events"] = json!(args.events);
    }
    Ok(
        json!({"apiVersion": api_version(RECEIVER), "kind": RECEIVER.kind,
        "metadata": object::metadata(name, create)?, "spec": spec}),
    )
}
