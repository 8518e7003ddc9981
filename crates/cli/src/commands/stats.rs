//! `ferroflux stats`: flux's `stats` table — per Flux kind how many objects run, fail (Ready
//! False) and are suspended, and the size of their stored artifacts.

use std::process::ExitCode;

use clap::Args;
use kube::api::{Api, DynamicObject, ListParams};

use super::cluster::{self, ClusterArgs};
use super::get::{self, Shown};
use crate::table;

/// Print the statistics of the reconciled objects.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Count the objects of all namespaces.
    #[arg(short = 'A', long)]
    all_namespaces: bool,
    #[command(flatten)]
    cluster: ClusterArgs,
}

/// The kinds in the order flux's `stats` lists them.
fn kinds() -> [Shown; 13] {
    [
        get::source("GitRepository", "gitrepositories"),
        get::source("OCIRepository", "ocirepositories"),
        get::source("HelmRepository", "helmrepositories"),
        get::source("HelmChart", "helmcharts"),
        get::source("Bucket", "buckets"),
        get::KUSTOMIZATIONS,
        get::HELM_RELEASES,
        get::ALERTS,
        get::ALERT_PROVIDERS,
        get::RECEIVERS,
        get::IMAGE_UPDATES,
        get::IMAGE_POLICIES,
        get::IMAGE_REPOSITORIES,
    ]
}

pub fn run(args: StatsArgs) -> anyhow::Result<ExitCode> {
    let namespace = (!args.all_namespaces).then(|| args.cluster.namespace.clone());
    cluster::block_on(args.cluster.timeout()?, async {
        let client = args.cluster.client().await?;
        let mut rows = Vec::new();
        for shown in kinds() {
            let api: Api<DynamicObject> = match &namespace {
                Some(ns) => Api::namespaced_with(client.clone(), ns, &shown.resource()),
                None => Api::all_with(client.clone(), &shown.resource()),
            };
            let (mut total, mut suspended, mut failing, mut size) = (0usize, 0usize, 0usize, 0i64);
            // As flux, a kind that cannot be listed counts as none.
            if let Ok(list) = api.list(&ListParams::default()).await {
                total = list.items.len();
                for item in list.items {
                    if item.data["spec"]["suspend"] == true {
                        suspended += 1;
                    }
                    let conditions = item.data["status"]["conditions"].as_array();
                    failing += conditions.map_or(0, |all| {
                        all.iter()
                            .filter(|c| c["type"] == "Ready" && c["status"] == "False")
                            .count()
                    });
                    size = size.saturating_add(
                        item.data["status"]["artifact"]["size"]
                            .as_i64()
                            .unwrap_or(0),
                    );
                }
            }
            rows.push(vec![
                shown.kind.to_string(),
                (total.saturating_sub(suspended)).to_string(),
                failing.to_string(),
                suspended.to_string(),
                format_size(size),
            ]);
        }
        let header = ["RECONCILERS", "RUNNING", "FAILING", "SUSPENDED", "STORAGE"];
        out!("{}", table::render(&header, &rows))?;
        Ok(ExitCode::SUCCESS)
    })
}

/// flux's `formatSize`: `-`, bytes, or binary units with one decimal.
fn format_size(bytes: i64) -> String {
    const UNIT: i64 = 1024;
    if bytes == 0 {
        return "-".to_string();
    }
    if bytes < UNIT {
        return format!("{bytes} B");
    }
    let (mut div, mut exp) = (UNIT, 0usize);
    let mut n = bytes / UNIT;
    while n >= UNIT {
        div *= UNIT;
        exp += 1;
        n /= UNIT;
    }
    let unit = "KMGTPE".chars().nth(exp).unwrap_or('E');
    // Precision loss only beyond 2^53 bytes, far past any artifact.
    let value = bytes as f64 / div as f64;
    format!("{value:.1} {unit}iB")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_print_like_flux() {
        assert_eq!(format_size(0), "-");
        assert_eq!(format_size(1023), "1023 B");
        assert_eq!(format_size(1536), "1.5 KiB");
        assert_eq!(format_size(5 * 1024 * 1024), "5.0 MiB");
    }
}
