//! Embedded Kubernetes-API-compatible server on SQLite.
//!
//! Expected flow: build a [`Config`], call [`serve`], use the returned [`RunningServer`]'s
//! kubeconfig with kubectl or kube-rs, and [`RunningServer::shutdown`] it.
//!
//! Guarantees: every object and the CA survive a restart on the same data dir; a write the
//! server acknowledged survives the process being killed (SQLite WAL, `synchronous=NORMAL`: not
//! a power loss); each failed request is answered with a `metav1.Status`.
//!
//! Layout: [`store`] (revision log, live index, watch hub, compaction) <- [`handlers`] (routing,
//! reads) and [`write`] (create/update/patch/delete) <- [`watch`]; pure decisions in [`meta`]
//! (metadata rules), [`patch`] (JSON/merge/strategic), [`ssa`] (managedFields), `ferroflux_schema`
//! (CRD pruning/defaulting/validation/CEL), [`defaults`] (built-in kinds' defaulting),
//! [`selector`], [`table`], [`discovery`] with [`builtin_schema`] (the OpenAPI schemas of
//! built-in kinds), [`convert`] (the two Event APIs) and [`proto`] (protobuf for the built-in
//! kinds); [`pod_subresources`] answers exec/attach/log/port-forward/debug; [`gc`] runs
//! namespace emptying and ownerReference collection; [`tls`] makes the PKI and kubeconfig.
//!
//! Access control: [`auth`] authenticates (admin token = `ferroflux:admin` in `system:masters`,
//! `--token-file` users, ServiceAccount JWTs); [`authz`] applies impersonation, authorizes
//! every request with the pure [`rbac`] decisions (403s in kube-apiserver's words), prevents
//! escalation on RBAC writes and serves the review and TokenRequest APIs; [`admission`] runs
//! pluggable validators on every create and update.
#![deny(missing_docs)]

pub mod admission;
pub mod auth;
pub mod authz;
pub mod builtin_schema;
pub mod convert;
pub mod defaults;
pub mod discovery;
pub mod gc;
pub mod handlers;
pub mod meta;
pub mod patch;
pub mod pod_subresources;
pub mod proto;
pub mod rbac;
pub mod registry;
pub mod selector;
pub mod ssa;
pub mod status;
pub mod store;
pub mod table;
pub mod tls;
pub mod watch;
pub mod webhook;
pub mod write;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use crate::handlers::App;
use crate::registry::Registry;
use crate::store::Store;

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The data dir could not be created or written.
    #[error("data dir {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// TLS material could not be prepared.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The ServiceAccount signing key or the token file could not be loaded.
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
    /// The async runtime or the signal handler could not be set up.
    #[error("runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The listen address could not be bound; pick another with `--listen`.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// How to run the server.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the database, certificates and token live.
    pub data_dir: PathBuf,
    /// Listen address; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Where to write the kubeconfig (default `<data_dir>/kubeconfig`).
    pub kubeconfig_out: Option<PathBuf>,
    /// Serve HTTPS (default) or plain HTTP (tests of the HTTP layer only).
    pub tls: bool,
    /// Extra names (DNS or IP) in the serving certificate, for clients that do not connect
    /// through localhost; a specific (non-wildcard) listen IP is added by itself.
    pub tls_sans: Vec<String>,
    /// Revisions kept in the log by compaction.
    pub compaction_retain: i64,
    /// How often compaction runs.
    pub compaction_interval: Duration,
    /// Static users: a CSV file of `token,user,uid[,"group1,group2"]` (kube-apiserver's
    /// `--token-auth-file`).
    pub token_file: Option<PathBuf>,
    /// Validating admission plugins, run on every create and update after authorization.
    pub validators: admission::Validators,
    /// How hard an acknowledged write is pushed to disk (`--durability`).
    pub durability: store::Durability,
}

impl Config {
    /// Defaults: HTTPS on 127.0.0.1:6443, kubeconfig in the data dir, 1000 revisions kept,
    /// compaction every minute.
    pub fn new(data_dir: impl Into<PathBuf>) -> Config {
        Config {
            data_dir: data_dir.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 6443)),
            kubeconfig_out: None,
            tls: true,
            tls_sans: Vec::new(),
            compaction_retain: 1000,
            compaction_interval: Duration::from_secs(60),
            token_file: None,
            validators: admission::Validators::default(),
            durability: store::Durability::Normal,
        }
    }
}

/// A started server.
pub struct RunningServer {
    /// The bound address.
    pub addr: SocketAddr,
    /// `https://127.0.0.1:PORT` (or `http://` without TLS).
    pub url: String,
    /// Where the kubeconfig was written.
    pub kubeconfig_path: PathBuf,
    /// The kubeconfig text.
    pub kubeconfig: String,
    /// The admin bearer token.
    pub token: String,
    /// The CA certificate (PEM), when serving HTTPS.
    pub ca_pem: Option<String>,
    /// The store (for tests and embedding).
    pub store: Arc<Store>,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    /// Stops accepting, closes every connection (watches end) and waits for the server task.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }
}

fn ensure_namespaces(store: &Store, reg: &Registry) -> Result<(), store::StoreError> {
    let ns = reg
        .lookup("", "v1", "namespaces")
        .expect("namespaces are built in");
    for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let key = ns.key("", name);
        if store.get(&key).is_none() {
            let obj = json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": name, "uid": uuid::Uuid::new_v4().to_string(), "creationTimestamp": meta::now(),
                    "labels": {"kubernetes.io/metadata.name": name}},
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}});
            store.put(&key, obj, true, None)?;
        }
    }
    Ok(())
}

/// The ConfigMap kube-controller-manager's root-CA publisher writes into every namespace.
const ROOT_CA_CONFIG_MAP: &str = "kube-root-ca.crt";

/// What kube-controller-manager puts into every active namespace and ferroflux, being the whole
/// control plane, creates itself: the `default` ServiceAccount and, when the server serves
/// TLS, the `kube-root-ca.crt` ConfigMap with its CA (`ca.crt`). Objects already there are
/// left as they are.
pub(crate) fn ensure_namespace_content(
    store: &Store,
    reg: &Registry,
    ns: &str,
    root_ca: Option<&str>,
) -> Result<(), store::StoreError> {
    let metadata = |name: &str| {
        json!({"name": name, "namespace": ns, "uid": uuid::Uuid::new_v4().to_string(),
            "creationTimestamp": meta::now()})
    };
    let mut objects = vec![(
        "serviceaccounts",
        "default",
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata("default")}),
    )];
    if let Some(ca) = root_ca {
        let mut cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": metadata(ROOT_CA_CONFIG_MAP), "data": {"ca.crt": ca}});
        cm["metadata"]["annotations"] = json!({"kubernetes.io/description":
            "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."});
        objects.push(("configmaps", ROOT_CA_CONFIG_MAP, cm));
    }
    for (plural, name, obj) in objects {
        let res = reg
            .lookup("", "v1", plural)
            .expect("core kinds are built in");
        let key = res.key(ns, name);
        if store.get(&key).is_none() {
            store.put(&key, obj, true, None)?;
        }
    }
    Ok(())
}

/// The `default/kubernetes` Service and its Endpoints, as kube-apiserver's bootstrap
/// controller keeps them: the first cluster IP, port 443 (`https`) to the port this server
/// listens on. In-cluster clients and Kubernetes' e2e framework look the API up through it.
/// Rewritten when the listen port changed since the last start.
fn ensure_kubernetes_service(
    store: &Store,
    reg: &Registry,
    port: u16,
) -> Result<(), store::StoreError> {
    let metadata = || {
        json!({"name": "kubernetes", "namespace": "default",
            "uid": uuid::Uuid::new_v4().to_string(), "creationTimestamp": meta::now(),
            "labels": {"component": "apiserver", "provider": "kubernetes"}})
    };
    let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": metadata(),
        "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.1", "clusterIPs": ["10.96.0.1"],
            "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
            "internalTrafficPolicy": "Cluster", "sessionAffinity": "None",
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]},
        "status": {"loadBalancer": {}}});
    let endpoints = json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": metadata(),
        "subsets": [{"addresses": [{"ip": "127.0.0.1"}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]});
    for (plural, obj, current) in [
        ("services", service, "/spec/ports/0/targetPort"),
        ("endpoints", endpoints, "/subsets/0/ports/0/port"),
    ] {
        let res = reg
            .lookup("", "v1", plural)
            .expect("core kinds are built in");
        let key = res.key("default", "kubernetes");
        match store.get(&key) {
            None => {
                store.put(&key, obj, true, None)?;
            }
            Some(stored) => {
                let mut old = stored.obj();
                if old.pointer(current) != Some(&json!(port)) {
                    if let Some(v) = old.pointer_mut(current) {
                        *v = json!(port);
                    }
                    store.put(&key, old, false, None)?;
                }
            }
        }
    }
    Ok(())
}

/// Creates the default ClusterRoles and ClusterRoleBindings that are missing (as
/// kube-apiserver's RBAC bootstrap does), so tenants can be bound to `admin`/`edit`/`view`.
fn ensure_rbac(store: &Store, reg: &Registry) -> Result<(), store::StoreError> {
    let kinds = [
        ("clusterroles", rbac::default_cluster_roles()),
        ("clusterrolebindings", rbac::default_cluster_role_bindings()),
    ];
    for (plural, objs) in kinds {
        let res = reg
            .lookup(rbac::RBAC_GROUP, "v1", plural)
            .expect("RBAC kinds are built in");
        for mut obj in objs {
            let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
            let key = res.key("", &name);
            if store.get(&key).is_none() {
                obj["metadata"]["uid"] = json!(uuid::Uuid::new_v4().to_string());
                obj["metadata"]["creationTimestamp"] = json!(meta::now());
                obj["metadata"]["annotations"] =
                    json!({"rbac.authorization.kubernetes.io/autoupdate": "true"});
                store.put(&key, obj, true, None)?;
            }
        }
    }
    Ok(())
}

/// Moves the objects of served CRDs from the keys older versions wrote
/// (`/registry/<group>/<plural>/`) to the custom root, so a data dir keeps its custom objects.
/// A legacy prefix that is a built-in kind's storage is left alone: those objects are not the
/// CRD's.
fn migrate_custom_keys(store: &Store, registry: &Registry) {
    let all = registry.all();
    let builtin: std::collections::HashSet<String> = all
        .iter()
        .filter(|r| !r.custom)
        .map(|r| r.prefix())
        .collect();
    let mut seen = std::collections::HashSet::new();
    for r in all.iter().filter(|r| r.custom) {
        let legacy = format!("/registry/{}/{}/", r.group, r.plural);
        if builtin.contains(&legacy) || !seen.insert(legacy.clone()) {
            continue;
        }
        for (key, s) in store.list(&legacy).1 {
            let moved = format!("{}{}", r.prefix(), &key[legacy.len()..]);
            if let Err(e) = store
                .put(&moved, s.obj(), true, None)
                .and_then(|_| store.delete(&key, Some(s.rev)))
            {
                tracing::warn!(key = %key, error = %e, "custom object not moved to the custom root");
            }
        }
    }
}

/// Builds the HTTP router over a store (no TLS, no listener): usable in-process, e.g. with
/// `kube::Client::new(router, "default")`.
pub fn router(store: Arc<Store>, token: String) -> Router {
    let key = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let auth = auth::Authenticator::new(token.clone(), Default::default(), key.as_bytes());
    let (app, _) = app(store, token, auth, admission::Validators::default(), None);
    Router::new().fallback(handlers::dispatch).with_state(app)
}

fn app(
    store: Arc<Store>,
    token: String,
    auth: auth::Authenticator,
    validators: admission::Validators,
    root_ca: Option<String>,
) -> (Arc<App>, tokio::task::JoinHandle<()>) {
    let registry = Registry::default();
    let crds = registry
        .lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        .expect("CRDs are built in");
    for (_, s) in store.list(&crds.prefix()).1 {
        if s.obj()["metadata"]["deletionTimestamp"].is_null()
            && let Err(e) = registry.install_crd(&s.obj())
        {
            tracing::warn!(error = %e, "stored CRD not served");
        }
    }
    migrate_custom_keys(&store, &registry);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let app = Arc::new(App {
        store,
        registry,
        token,
        gc: tx,
        auth,
        policy: authz::PolicyCache::default(),
        services: defaults::ServiceAllocations::default(),
        validators,
        root_ca,
    });
    let worker = gc::spawn_worker(app.clone(), rx);
    (app, worker)
}

/// Starts the server.
///
/// Errors: the data dir cannot be written, the store cannot be opened, TLS material cannot be
/// made, or the address cannot be bound.
pub async fn serve(config: Config) -> Result<RunningServer, Error> {
    let dir = &config.data_dir;
    std::fs::create_dir_all(dir).map_err(|source| Error::DataDir {
        path: dir.clone(),
        source,
    })?;
    let store = Arc::new(Store::open_with(&dir.join("state.db"), config.durability)?);
    let token = tls::token(dir)?;
    let pki = if config.tls {
        let mut sans = config.tls_sans.clone();
        let ip = config.listen.ip();
        if !ip.is_unspecified() && !ip.is_loopback() {
            sans.push(ip.to_string());
        }
        Some(tls::load_or_create(dir, &sans)?)
    } else {
        None
    };
    let acceptor = match &pki {
        Some(p) => Some(tokio_rustls::TlsAcceptor::from(Arc::new(
            tls::server_config(p)?,
        ))),
        None => None,
    };
    let static_users = match &config.token_file {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).map_err(|source| auth::AuthError::TokenFileRead {
                    path: p.display().to_string(),
                    source,
                })?;
            auth::parse_token_file(&p.display().to_string(), &text)?
        }
        None => Default::default(),
    };
    let key = auth::load_or_create_key(dir)?;
    let authenticator = auth::Authenticator::new(token.clone(), static_users, &key);
    let (app, worker) = app(
        store.clone(),
        token.clone(),
        authenticator,
        config.validators.clone(),
        pki.as_ref().map(|p| p.ca_pem.clone()),
    );
    ensure_namespaces(&store, &app.registry)?;
    let ns_res = app
        .registry
        .lookup("", "v1", "namespaces")
        .expect("namespaces are built in");
    for (_, s) in store.list(&ns_res.prefix()).1 {
        let ns = s.obj();
        if ns["metadata"]["deletionTimestamp"].is_null()
            && let Some(name) = ns["metadata"]["name"].as_str()
        {
            ensure_namespace_content(&store, &app.registry, name, app.root_ca.as_deref())?;
        }
    }
    ensure_rbac(&store, &app.registry)?;
    authz::fill_aggregated(&store);
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| Error::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| Error::Bind {
        addr: config.listen,
        source,
    })?;
    ensure_kubernetes_service(&store, &app.registry, addr.port())?;
    let router = Router::new().fallback(handlers::dispatch).with_state(app);
    let url = format!(
        "{}://{addr}",
        if acceptor.is_some() { "https" } else { "http" }
    );
    let kubeconfig = tls::kubeconfig(&url, pki.as_ref().map(|p| p.ca_pem.as_str()), &token);
    let kubeconfig_path = config
        .kubeconfig_out
        .clone()
        .unwrap_or_else(|| dir.join("kubeconfig"));
    tls::write_private(&kubeconfig_path, &kubeconfig)?;
    let (stx, srx) = oneshot::channel::<()>();
    let compaction = {
        let store = store.clone();
        let (retain, every) = (config.compaction_retain, config.compaction_interval);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                let s = store.clone();
                if let Ok(Err(e)) = tokio::task::spawn_blocking(move || s.compact(retain)).await {
                    tracing::warn!(error = %e, "compaction failed");
                }
            }
        })
    };
    let serving = serve_router(listener, router, acceptor, srx);
    let task = tokio::spawn(async move {
        let _ = serving.await;
        compaction.abort();
        worker.abort();
    });
    Ok(RunningServer {
        addr,
        url,
        kubeconfig_path,
        kubeconfig,
        token,
        ca_pem: pki.map(|p| p.ca_pem),
        store,
        shutdown: Some(stx),
        task,
    })
}

/// Serves `router` on `listener` (over TLS when `acceptor` is set, HTTP/1 and HTTP/2 with
/// upgrades) until `stop` fires; open connections are then closed. Shared with the other HTTPS
/// endpoints of the project (the policy webhook), so every server accepts the same way.
pub fn serve_router(
    listener: TcpListener,
    router: Router,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    mut stop: oneshot::Receiver<()>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut conns = JoinSet::new();
        loop {
            tokio::select! {
                _ = &mut stop => break,
                accepted = listener.accept() => {
                    let Ok((tcp, _)) = accepted else { continue };
                    let _ = tcp.set_nodelay(true);
                    let svc = TowerToHyperService::new(router.clone());
                    let acceptor = acceptor.clone();
                    conns.spawn(async move {
                        let builder = auto::Builder::new(TokioExecutor::new());
                        match acceptor {
                            Some(a) => {
                                let Ok(tls) = a.accept(tcp).await else { return };
                                let _ = builder.serve_connection_with_upgrades(TokioIo::new(tls), svc).await;
                            }
                            None => {
                                let _ = builder.serve_connection_with_upgrades(TokioIo::new(tcp), svc).await;
                            }
                        }
                    });
                }
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
        conns.abort_all();
        while conns.join_next().await.is_some() {}
    })
}

/// Runs the server on a new runtime until SIGINT or SIGTERM, for binaries without their own
/// runtime. `on_ready` is called once the server listens.
///
/// Errors: those of [`serve`], or the runtime/signal setup failing.
pub fn run_until_signal(
    config: Config,
    on_ready: impl FnOnce(&RunningServer),
) -> Result<(), Error> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    rt.block_on(async move {
        let server = serve(config).await?;
        on_ready(&server);
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .map_err(Error::Runtime)?;
            tokio::select! {
                r = tokio::signal::ctrl_c() => r.map_err(Error::Runtime)?,
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        tokio::signal::ctrl_c().await.map_err(Error::Runtime)?;
        server.shutdown().await;
        Ok(())
    })
}
