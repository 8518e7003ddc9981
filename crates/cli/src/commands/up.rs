//! `ferroflux up`: the embedded GitOps control plane on one machine ([`ferroflux_embedded`]:
//! the API server, the artifact server, a local Git server with the fleet, the controllers and
//! the bootstrap like `flux bootstrap`), reported step by step; then shows the Kustomizations
//! like `flux get kustomizations -A` until they are Ready. `--example seed` serves the seed
//! article's platform ([`ferroflux_embedded::seed`]) and prints its Verify commands once Ready.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Args, ValueEnum};

use ferroflux_admission::PolicyCache;
use ferroflux_apply::manager::{Action, Change};
use ferroflux_controllers::runtime::SupervisionError;
use ferroflux_controllers::simulator;
use ferroflux_embedded::{ControllerOptions, FleetSource, seed};
use ferroflux_gocompat::duration::parse_std as parse_duration;

/// The bundled examples `up` can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Example {
    /// examples/fleet-infra and examples/tenant-apps: two tenants syncing from Git.
    Fleet,
    /// examples/seed: the seed article's platform (signed OCI artifact, image automation,
    /// Kyverno URL allowlist, Slack alerts, health checks), under Flux's lockdown flags.
    Seed,
}

/// Run the embedded control plane with a fleet repository.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Which bundled example to serve on first run; `seed` implies
    /// --no-cross-namespace-refs and --default-service-account=default.
    #[arg(long, value_enum, default_value_t = Example::Fleet, conflicts_with_all = ["fleet", "apps"])]
    example: Example,
    /// Where the API server's database, the artifacts and the Git repositories live.
    #[arg(long, default_value = ".ferroflux")]
    data_dir: PathBuf,
    /// Address of the API server.
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Where to write the kubeconfig (default `<data-dir>/kubeconfig`).
    #[arg(long)]
    kubeconfig_out: Option<PathBuf>,
    /// Fleet repository folder, used on first run (default: the bundled examples/fleet-infra).
    #[arg(long)]
    fleet: Option<PathBuf>,
    /// Tenants' app repository folder, used on first run (default: the bundled examples/tenant-apps).
    #[arg(long)]
    apps: Option<PathBuf>,
    /// Cluster name: the fleet is synced from `clusters/<cluster>`.
    #[arg(long, default_value = "prod")]
    cluster: String,
    /// Exit 0 once every Kustomization is Ready, 1 when one fails or on --timeout.
    #[arg(long)]
    exit_when_ready: bool,
    /// With --exit-when-ready: how long to wait.
    #[arg(long, default_value = "5m")]
    timeout: String,
    /// Lockdown: the ServiceAccount that Kustomizations without `serviceAccountName`
    /// impersonate (the flux-system ones name `kustomize-controller`, as in Flux's guide).
    #[arg(long, value_name = "NAME")]
    default_service_account: Option<String>,
    /// Lockdown: refuse references to objects in other namespaces (Kustomization sources,
    /// ImagePolicy repositories, ImageUpdateAutomation sources).
    #[arg(long)]
    no_cross_namespace_refs: bool,
    /// Workloads whose image matches this glob never become available (to test health
    /// gating and rollbacks).
    #[arg(long, value_name = "IMAGE_GLOB")]
    simulate_failure: Option<String>,
    /// Time before a simulated rollout becomes available.
    #[arg(long, default_value = "1s")]
    simulator_delay: String,
    /// Do not simulate workload status (Deployments then never become available).
    #[arg(long)]
    no_simulator: bool,
    /// Where the notification controller serves Receivers' webhooks (port 0: a free one).
    #[arg(long, default_value = "127.0.0.1:9292")]
    receiver_listen: SocketAddr,
    /// Address of the local OCI registry (default: the previous run's port, else
    /// 127.0.0.1:5050 when free, else a free one).
    #[arg(long, value_name = "HOST:PORT")]
    registry_listen: Option<SocketAddr>,
    /// `normal`: an acknowledged write survives the process being killed; `strict`: it is
    /// synced to disk first (SQLite `synchronous=FULL`), so it also survives a power cut.
    #[arg(long, default_value = "normal", value_name = "normal|strict")]
    durability: ferroflux_apiserver::store::Durability,
}

pub fn run(args: UpArgs) -> anyhow::Result<ExitCode> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Errors only (a controller that died, ...): stdout is the status table. RUST_LOG widens it.
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error"));
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(filter);
    // The controllers' own log, one JSON line per reconcile as Flux's controllers write it:
    // `ferroflux logs` reads it (`logs::UP_LOG_FILE`).
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create {}", args.data_dir.display()))?;
    let path = args.data_dir.join(super::logs::UP_LOG_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let controllers = tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_writer(std::sync::Mutex::new(file))
        .with_filter(tracing_subscriber::filter::Targets::new().with_targets([
            ("ferroflux_controllers", tracing::Level::INFO),
            ("ferroflux_embedded", tracing::Level::INFO),
        ]));
    tracing_subscriber::registry()
        .with(stderr)
        .with(controllers)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(up(args))
}

/// The controllers' options from the flags (checked before anything starts).
fn controller_options(args: &UpArgs) -> anyhow::Result<ControllerOptions> {
    let simulator_delay = parse_duration(&args.simulator_delay).with_context(|| {
        format!(
            "--simulator-delay {:?} is not a duration",
            args.simulator_delay
        )
    })?;
    let simulator = simulator::Options::new(simulator_delay, args.simulate_failure.as_deref())
        .with_context(|| {
            format!(
                "--simulate-failure {:?} is not a glob",
                args.simulate_failure
            )
        })?;
    let seed = args.example == Example::Seed;
    // The seed's fleet has one cluster entry point.
    if seed && args.cluster != seed::CLUSTER {
        anyhow::bail!(
            "--example seed syncs clusters/{}: leave --cluster out",
            seed::CLUSTER
        );
    }
    // The seed's platform runs under Flux's multi-tenancy lockdown.
    let default_service_account = match (&args.default_service_account, seed) {
        (Some(account), _) => Some(account.clone()),
        (None, true) => Some("default".to_string()),
        (None, false) => None,
    };
    Ok(ControllerOptions {
        default_service_account,
        no_cross_namespace_refs: args.no_cross_namespace_refs || seed,
        simulator: (!args.no_simulator).then_some(simulator),
    })
}

async fn up(args: UpArgs) -> anyhow::Result<ExitCode> {
    let options = controller_options(&args)?;
    let timeout = parse_duration(&args.timeout)
        .with_context(|| format!("--timeout {:?} is not a duration", args.timeout))?;
    outln!("► starting the API server")?;
    let policies = Arc::new(PolicyCache::default());
    let server = ferroflux_embedded::start_api_server(
        &args.data_dir,
        args.listen,
        args.kubeconfig_out,
        &policies,
        args.durability,
    )
    .await?;
    outln!(
        "✔ API server at {} (kubeconfig: {})",
        server.url,
        server.kubeconfig_path.display()
    )?;
    let servers = ferroflux_embedded::serve_sources(&args.data_dir, args.receiver_listen).await?;
    outln!(
        "✔ Receivers' webhooks at http://{}/hook/...",
        servers.receiver_addr
    )?;
    let registry = ferroflux_embedded::serve_registry(&args.data_dir, args.registry_listen).await?;
    outln!(
        "✔ OCI registry at {} (push to oci://{}/<repository>:<tag>)",
        registry.host(),
        registry.host()
    )?;
    let source = FleetSource {
        fleet: args.fleet.as_deref(),
        apps: args.apps.as_deref(),
        cluster: &args.cluster,
    };
    let seed = args.example == Example::Seed;
    let fleet = if seed {
        seed::write_repositories(&servers, &registry.host(), &args.cluster)?
    } else {
        ferroflux_embedded::write_fleet(&servers, &source)?
    };
    if fleet.created {
        outln!("✔ fleet repository created at {}", fleet.url)?;
    }
    let (client, kube_config) = ferroflux_embedded::client(&server).await?;
    let policy_watch = ferroflux_embedded::watch_policies(&client, &policies).await;
    outln!(
        "► installing components and bootstrapping clusters/{}",
        args.cluster
    )?;
    let changes =
        ferroflux_embedded::bootstrap(&client, &args.cluster, &fleet.url, &servers.git_url).await?;
    print_bootstrap(&changes)?;
    if seed {
        publish_seed(&client, &servers, &registry.host(), &args.data_dir).await?;
    }
    let records = ferroflux_embedded::controller_deployments(&options, &servers, &args.data_dir);
    ferroflux_embedded::register_controllers(&client, &records).await?;
    outln!(
        "✔ controllers registered as Deployments in flux-system: {}",
        records
            .iter()
            .filter_map(|d| d.metadata.name.as_deref())
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    let mut controllers = ferroflux_embedded::start_controllers(
        &client,
        kube_config,
        &servers,
        &args.data_dir,
        options,
    )?;
    let when_ready = seed.then(|| {
        let kubeconfig = std::path::absolute(&server.kubeconfig_path)
            .unwrap_or_else(|_| server.kubeconfig_path.clone());
        WhenReady {
            text: format!(
                "► the seed is Ready; its Verify section:\n{}",
                seed::verify_commands(&kubeconfig)
            ),
            kinds: SEED_KINDS,
        }
    });
    let code = watch_status(
        &client,
        args.exit_when_ready,
        timeout,
        &mut controllers.supervisors,
        when_ready,
    )
    .await?;
    controllers.stop().await;
    registry.shutdown().await;
    policy_watch.abort();
    server.shutdown().await;
    Ok(code)
}

/// What [`watch_status`] prints once the Kustomizations and every object of `kinds` are Ready.
struct WhenReady {
    text: String,
    kinds: &'static [super::get::Shown],
}

/// What the seed's Verify section reads besides the Kustomizations: the image policy's tag
/// and the automation's pushed commit.
const SEED_KINDS: &[super::get::Shown] = &[super::get::IMAGE_POLICIES, super::get::IMAGE_UPDATES];

/// Whether there are objects of every kind of `kinds` and all are Ready.
async fn kinds_ready(client: &kube::Client, kinds: &[super::get::Shown]) -> anyhow::Result<bool> {
    for &kind in kinds {
        let list = super::get::list(client, kind, None).await?;
        if list.is_empty() || !list.iter().all(super::get::is_ready) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The seed's part of the outside world: its artifacts in the registry (signed), its Secrets
/// and the Slack receiver, whose messages are printed as they come.
async fn publish_seed(
    client: &kube::Client,
    servers: &ferroflux_embedded::SourceServers,
    registry: &str,
    data_dir: &std::path::Path,
) -> anyhow::Result<()> {
    let (slack, mut messages) = seed::serve_slack().await?;
    tokio::spawn(async move {
        while let Some(line) = messages.recv().await {
            if outln!("✉ slack {line}").is_err() {
                break;
            }
        }
    });
    let published = seed::publish(servers, registry, data_dir).await?;
    outln!(
        "✔ pushed podinfo tags {} to {registry}/{}",
        seed::PODINFO_TAGS.join(", "),
        seed::PODINFO_REPOSITORY
    )?;
    outln!(
        "✔ pushed team-a's manifests to {} ({}), signed with cosign",
        published.artifact,
        published.digest
    )?;
    seed::apply_secrets(client, registry, &published, slack).await?;
    outln!("✔ Slack receiver at http://{slack}/slack (messages are printed here)")?;
    Ok(())
}

fn print_bootstrap(changes: &[Change]) -> anyhow::Result<()> {
    let changed = changes
        .iter()
        .filter(|c| c.action != Action::Unchanged)
        .count();
    outln!(
        "✔ bootstrap: {changed} object(s) created or configured, {} unchanged",
        changes.len() - changed
    )?;
    Ok(())
}

/// Prints the Kustomizations whenever they change, and `when_ready` the first time they and
/// its kinds are all Ready; with `exit_when_ready` returns 0 once all are Ready, 1 when one is
/// Stalled or the timeout passes. Otherwise runs until Ctrl-C. Fails when a controller keeps
/// dying (its supervisor gave up).
async fn watch_status(
    client: &kube::Client,
    exit_when_ready: bool,
    timeout: Duration,
    supervisors: &mut tokio::task::JoinHandle<Result<(), SupervisionError>>,
    mut when_ready: Option<WhenReady>,
) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let mut last = String::new();
    let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
    loop {
        let list = super::get::list(client, super::get::KUSTOMIZATIONS, None).await?;
        let all_ready = !list.is_empty() && list.iter().all(super::get::is_ready);
        let stalled = list.iter().find(|ks| {
            ks["status"]["conditions"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Stalled" && c["status"] == "True")
            })
        });
        let stalled = stalled.map(|ks| {
            format!(
                "{}/{}",
                ks["metadata"]["namespace"].as_str().unwrap_or_default(),
                ks["metadata"]["name"].as_str().unwrap_or_default()
            )
        });
        let rendered = super::get::render(super::get::KUSTOMIZATIONS, &list, true);
        if rendered != last {
            outln!("{rendered}")?;
            last = rendered;
        }
        if all_ready
            && let Some(ready) = &when_ready
            && kinds_ready(client, ready.kinds).await?
        {
            outln!("{}", ready.text)?;
            when_ready = None;
        }
        if exit_when_ready {
            if all_ready {
                outln!("✔ all Kustomizations are Ready")?;
                return Ok(ExitCode::SUCCESS);
            }
            if let Some(name) = stalled {
                outln!("✗ Kustomization {name} is stalled")?;
                return Ok(ExitCode::FAILURE);
            }
            if started.elapsed() > timeout {
                outln!("✗ timeout after {timeout:?} waiting for the Kustomizations to be Ready")?;
                return Ok(ExitCode::FAILURE);
            }
        }
        tokio::select! {
            _ = &mut ctrl_c => {
                outln!("► shutting down")?;
                return Ok(ExitCode::SUCCESS);
            }
            // The supervisors end before shutdown only when a controller keeps dying: the
            // statuses printed would then be stale, so `up` fails.
            ended = &mut *supervisors => {
                ended.context("the controllers' supervisor failed")??;
                anyhow::bail!("the controllers stopped");
            }
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    /// The example and the controllers' options of an `up` command line.
    fn parse(line: &[&str]) -> Result<(Example, anyhow::Result<ControllerOptions>), clap::Error> {
        let crate::Command::Up(args) = crate::Cli::try_parse_from(line)?.command else {
            panic!("parsed as another command")
        };
        Ok((args.example, controller_options(&args)))
    }

    #[test]
    fn the_seed_runs_under_the_lockdown_flags_and_takes_no_fleet_folder() {
        let (example, options) = parse(&["ferroflux", "up", "--example", "seed"]).expect("parses");
        assert_eq!(example, Example::Seed);
        let options = options.expect("valid options");
        assert!(options.no_cross_namespace_refs);
        assert_eq!(options.default_service_account.as_deref(), Some("default"));
        let (example, options) = parse(&["ferroflux", "up"]).expect("parses");
        assert_eq!(example, Example::Fleet);
        let options = options.expect("valid options");
        assert!(!options.no_cross_namespace_refs);
        assert_eq!(options.default_service_account, None);
        let both = parse(&["ferroflux", "up", "--example", "seed", "--fleet", "/tmp/x"]);
        assert!(both.is_err(), "--fleet is refused with --example");
        let (_, staging) =
            parse(&["ferroflux", "up", "--example=seed", "--cluster=staging"]).expect("parses");
        let refused = staging.expect_err("the seed has no staging cluster");
        assert!(refused.to_string().contains("clusters/prod"), "{refused}");
    }

    #[test]
    fn every_recorded_deployment_runs_a_command_line_the_cli_accepts() {
        let args = crate::Cli::try_parse_from([
            "ferroflux",
            "up",
            "--no-cross-namespace-refs",
            "--default-service-account=default",
        ])
        .expect("up flags parse");
        let crate::Command::Up(args) = args.command else {
            panic!("parsed as another command")
        };
        let options = controller_options(&args).expect("valid options");
        let dir = tempfile::tempdir().expect("temp dir");
        let servers = ferroflux_embedded::SourceServers {
            storage: std::sync::Arc::new(
                ferroflux_source::storage::Storage::new(dir.path(), "http://127.0.0.1:1")
                    .expect("storage"),
            ),
            artifact_url: "http://127.0.0.1:1".into(),
            git_root: dir.path().join("git"),
            git_url: "http://127.0.0.1:2".into(),
            events_addr: ([127, 0, 0, 1], 3).into(),
            receiver_addr: ([127, 0, 0, 1], 4).into(),
        };
        let records = ferroflux_embedded::controller_deployments(&options, &servers, dir.path());
        // Every component but `policy-webhook`: admission runs inside the API server.
        assert_eq!(records.len(), ferroflux_embedded::COMPONENTS.len() - 1);
        for deployment in records {
            let container = deployment
                .spec
                .and_then(|s| s.template.spec)
                .map(|s| s.containers[0].clone())
                .expect("a container");
            let mut line = container.command.expect("command");
            let flags = container.args.expect("args");
            line.extend(flags.iter().cloned());
            if let Err(err) = crate::Cli::try_parse_from(&line) {
                panic!("{line:?} does not parse: {err}");
            }
            let name = deployment.metadata.name.expect("name");
            let lockdown = flags.contains(&"--no-cross-namespace-refs=true".to_string());
            assert_eq!(lockdown, name != "source-controller", "{name}: {flags:?}");
            let default_sa = flags.contains(&"--default-service-account=default".to_string());
            assert_eq!(
                default_sa,
                ferroflux_embedded::manifests::APPLIERS.contains(&name.as_str()),
                "{name}: {flags:?}"
            );
        }
    }
}
