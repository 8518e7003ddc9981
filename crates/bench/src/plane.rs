//! The control planes a run targets besides `ferroflux up`: an API server (`ferroflux
//! apiserver` or the real kube-apiserver with etcd from `scripts/peers.sh`) and, as separate
//! processes, a source controller and a kustomize controller: ferroflux's (`ferroflux
//! controller source|kustomize`) or Flux's own, built from their Go modules by the peers script.
//! Both sets get the flags of Flux's benchmark (source concurrency 10, kustomize concurrency 20,
//! dependencies requeued every 5 s) and the same upstream CRDs, so a run compares controllers,
//! not set-ups.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use ferroflux_testpeers::{KubeApiserver, peer_binary, peer_source};

/// Which API server a run targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ApiServer {
    /// `ferroflux up`: API server and controllers in one process.
    Up,
    /// `ferroflux apiserver`, with the controllers as separate processes.
    Embedded,
    /// The real kube-apiserver, etcd and kube-controller-manager of the peers script.
    Kube,
}

/// Whose controllers reconcile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Controllers {
    /// `ferroflux controller source` and `ferroflux controller kustomize`.
    Ferroflux,
    /// Flux's source-controller and kustomize-controller.
    Flux,
}

/// A child process killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Peak resident memory (MiB) and CPU seconds of a set of processes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// The sum of each process's peak RSS.
    pub peak_mib: f64,
    /// The CPU seconds they used together.
    pub cpu_s: f64,
}

impl Usage {
    /// The usage of `pids` now, from /proc (a gone process counts nothing).
    pub fn of(pids: &[u32]) -> Usage {
        pids.iter().filter_map(|pid| crate::usage(*pid)).fold(
            Usage::default(),
            |sum, (peak, cpu)| Usage {
                peak_mib: sum.peak_mib + peak,
                cpu_s: sum.cpu_s + cpu,
            },
        )
    }
}

/// An API server and two controllers, each its own process, stopped when dropped
/// (controllers first: fields drop in order).
pub struct Plane {
    /// The admin kubeconfig.
    pub kubeconfig: PathBuf,
    /// The processes of the API server (for kube: etcd and kube-apiserver).
    pub api_pids: Vec<u32>,
    /// The controllers' processes.
    pub controller_pids: Vec<u32>,
    /// The controllers' `/metrics` addresses.
    pub metrics: Vec<String>,
    controllers: Vec<Killed>,
    api: Option<Killed>,
    kube: Option<KubeApiserver>,
    dir: tempfile::TempDir,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn peer(name: &str) -> anyhow::Result<PathBuf> {
    let path = peer_binary(name).map_err(|e| anyhow::anyhow!("{e}"))?;
    if !path.is_file() {
        bail!("{name} is not built: run scripts/peers.sh build {name}");
    }
    Ok(path)
}

impl Plane {
    /// Starts `api` (not [`ApiServer::Up`]), installs the upstream source and kustomize CRDs
    /// and starts `controllers` against it; `ferroflux` is the binary of ferroflux's.
    pub fn start(
        api: ApiServer,
        controllers: Controllers,
        ferroflux: &Path,
    ) -> anyhow::Result<Plane> {
        let dir = tempfile::Builder::new()
            .prefix("ferroflux-bench-")
            .tempdir()?;
        let mut plane = Plane {
            kubeconfig: dir.path().join("kubeconfig"),
            api_pids: Vec::new(),
            controller_pids: Vec::new(),
            metrics: Vec::new(),
            controllers: Vec::new(),
            api: None,
            kube: None,
            dir,
        };
        match api {
            ApiServer::Up => bail!("`up` runs its own controllers: no plane to start"),
            ApiServer::Embedded => plane.start_embedded(ferroflux)?,
            ApiServer::Kube => plane.start_kube()?,
        }
        plane.install_crds()?;
        plane.start_controllers(controllers, ferroflux)?;
        Ok(plane)
    }

    fn start_embedded(&mut self, ferroflux: &Path) -> anyhow::Result<()> {
        let port = free_port()?;
        let child = Command::new(ferroflux)
            .args(["apiserver", "--simulator-delay", "0s", "--data-dir"])
            .arg(self.dir.path().join("api"))
            .args(["--listen", &format!("127.0.0.1:{port}"), "--kubeconfig-out"])
            .arg(&self.kubeconfig)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", ferroflux.display()))?;
        self.api_pids.push(child.id());
        self.api = Some(Killed(child));
        let started = Instant::now();
        while !(self.kubeconfig.is_file()
            && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok())
        {
            if started.elapsed() > Duration::from_secs(30) {
                bail!("ferroflux apiserver did not serve on 127.0.0.1:{port} within 30 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    fn start_kube(&mut self) -> anyhow::Result<()> {
        let kube = KubeApiserver::start().map_err(|e| anyhow::anyhow!("{e}"))?;
        std::fs::copy(kube.kubeconfig(), &self.kubeconfig)?;
        // etcd and kube-apiserver, the first two processes the peers script started.
        let pids = std::fs::read_to_string(kube.dir().join("pids"))?;
        self.api_pids = pids
            .lines()
            .take(2)
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        self.kube = Some(kube);
        Ok(())
    }

    /// The CRDs of Flux's source-controller and kustomize-controller modules, applied and
    /// established.
    fn install_crds(&self) -> anyhow::Result<()> {
        let mut args: Vec<String> = vec!["apply".into(), "--server-side".into()];
        for module in ["source-controller", "kustomize-controller"] {
            let bases = peer_source(module)
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .join("config/crd/bases");
            for entry in std::fs::read_dir(&bases)? {
                let path = entry?.path();
                if path.extension().is_some_and(|e| e == "yaml") {
                    args.extend(["-f".into(), path.display().to_string()]);
                }
            }
        }
        self.kubectl(&args)?;
        self.kubectl(&[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/ocirepositories.source.toolkit.fluxcd.io",
            "crd/kustomizations.kustomize.toolkit.fluxcd.io",
        ])?;
        self.kubectl(&["create", "namespace", "flux-system"])?;
        Ok(())
    }

    fn kubectl<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> anyhow::Result<()> {
        let output = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .context("kubectl")?;
        if !output.status.success() {
            bail!("kubectl: {}", String::from_utf8_lossy(&output.stderr));
        }
        Ok(())
    }

    fn start_controllers(&mut self, set: Controllers, ferroflux: &Path) -> anyhow::Result<()> {
        let storage = self.dir.path().join("storage");
        std::fs::create_dir_all(&storage)?;
        let storage_addr = format!("127.0.0.1:{}", free_port()?);
        let source = [
            format!("--storage-path={}", storage.display()),
            format!("--storage-addr={storage_addr}"),
            format!("--storage-adv-addr={storage_addr}"),
            "--concurrent=10".into(),
            "--requeue-dependency=5s".into(),
        ];
        let kustomize = ["--concurrent=20".into(), "--requeue-dependency=5s".into()];
        let runs: [(&str, &[String]); 2] = [("source", &source), ("kustomize", &kustomize)];
        for (name, args) in runs {
            let metrics = format!("127.0.0.1:{}", free_port()?);
            let log = std::fs::File::create(self.dir.path().join(format!("{name}.log")))?;
            let mut command = match set {
                Controllers::Ferroflux => {
                    let mut command = Command::new(ferroflux);
                    command.args(["controller", name]);
                    command
                }
                Controllers::Flux => {
                    let mut command = Command::new(peer(&format!("{name}-controller"))?);
                    command
                        .arg(format!("--health-addr=127.0.0.1:{}", free_port()?))
                        .env("RUNTIME_NAMESPACE", "flux-system");
                    command
                }
            };
            let child = command
                .arg(format!("--metrics-addr={metrics}"))
                .args(args)
                .env("KUBECONFIG", &self.kubeconfig)
                .stdout(Stdio::from(log.try_clone()?))
                .stderr(Stdio::from(log))
                .spawn()
                .with_context(|| format!("cannot start the {name} controller"))?;
            self.controller_pids.push(child.id());
            self.controllers.push(Killed(child));
            self.metrics.push(metrics);
        }
        Ok(())
    }

    /// The reconcile durations of `kind` from the controllers' `gotk_reconcile_duration_seconds`
    /// histograms summed over objects: the mean (seconds), and the bucket bounds holding the
    /// p50 and the p99.
    pub async fn reconcile_durations(&self, kind: &str) -> Option<Durations> {
        let mut buckets: Vec<(f64, f64)> = Vec::new();
        let (mut sum, mut count) = (0.0, 0.0);
        for address in &self.metrics {
            let text = reqwest_text(&format!("http://{address}/metrics")).await?;
            for (le, n) in histogram_buckets(&text, kind) {
                match buckets.iter_mut().find(|(l, _)| *l == le) {
                    Some((_, total)) => *total += n,
                    None => buckets.push((le, n)),
                }
            }
            sum += series_total(&text, "gotk_reconcile_duration_seconds_sum", kind);
            count += series_total(&text, "gotk_reconcile_duration_seconds_count", kind);
        }
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        Some(Durations {
            reconciles: count,
            mean: sum / count.max(1.0),
            p50: quantile(&buckets, 0.5)?,
            p99: quantile(&buckets, 0.99)?,
        })
    }
}

/// What the controllers' histograms say of one kind's reconciles.
#[derive(Debug, Clone, Copy)]
pub struct Durations {
    /// How many reconciles ran.
    pub reconciles: f64,
    /// Their mean duration, seconds.
    pub mean: f64,
    /// The upper bound of the bucket holding the median.
    pub p50: f64,
    /// The upper bound of the bucket holding the 99th percentile.
    pub p99: f64,
}

/// The sum over every series of `metric` for `kind` in a Prometheus text exposition.
fn series_total(text: &str, metric: &str, kind: &str) -> f64 {
    let (prefix, wanted) = (format!("{metric}{{"), format!("kind=\"{kind}\""));
    text.lines()
        .filter(|l| l.starts_with(&prefix) && l.contains(&wanted))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn reqwest_text(url: &str) -> Option<String> {
    let response = ferroflux_source::http::default_client()
        .get(url)
        .send()
        .await
        .ok()?;
    response.text().await.ok()
}

/// The cumulative `(le, count)` buckets of `gotk_reconcile_duration_seconds` for `kind` in a
/// Prometheus text exposition, one per series line.
fn histogram_buckets(text: &str, kind: &str) -> Vec<(f64, f64)> {
    let wanted = format!("kind=\"{kind}\"");
    text.lines()
        .filter(|l| l.starts_with("gotk_reconcile_duration_seconds_bucket{") && l.contains(&wanted))
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            let count = l.rsplit(' ').next()?.parse().ok()?;
            Some((le, count))
        })
        .collect()
}

/// The upper bound of the bucket holding quantile `q` of cumulative `buckets` (sorted by `le`).
fn quantile(buckets: &[(f64, f64)], q: f64) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    buckets
        .iter()
        .find(|(_, count)| *count >= q * total)
        .map(|(le, _)| *le)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_from_the_summed_buckets_of_the_kind() {
        let text = "\
gotk_reconcile_duration_seconds_bucket{kind=\"Kustomization\",name=\"a\",namespace=\"n\",le=\"0.1\"} 8
gotk_reconcile_duration_seconds_bucket{kind=\"Kustomization\",name=\"a\",namespace=\"n\",le=\"1\"} 9
gotk_reconcile_duration_seconds_bucket{kind=\"Kustomization\",name=\"a\",namespace=\"n\",le=\"+Inf\"} 10
gotk_reconcile_duration_seconds_bucket{kind=\"OCIRepository\",name=\"a\",namespace=\"n\",le=\"0.1\"} 1
";
        let buckets = histogram_buckets(text, "Kustomization");
        assert_eq!(buckets, vec![(0.1, 8.0), (1.0, 9.0), (f64::INFINITY, 10.0)]);
        assert_eq!(quantile(&buckets, 0.5), Some(0.1));
        assert_eq!(quantile(&buckets, 0.9), Some(1.0));
        assert_eq!(quantile(&buckets, 0.99), Some(f64::INFINITY));
        assert_eq!(quantile(&[], 0.5), None);
        let sums = "gotk_reconcile_duration_seconds_sum{kind=\"Kustomization\",name=\"a\"} 1.5\n\
                    gotk_reconcile_duration_seconds_sum{kind=\"Kustomization\",name=\"b\"} 0.5\n";
        assert_eq!(
            series_total(sums, "gotk_reconcile_duration_seconds_sum", "Kustomization"),
            2.0
        );
    }
}
