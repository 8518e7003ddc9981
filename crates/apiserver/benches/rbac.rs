//! Authorization cost per decision with 1,000 Roles and 1,000 RoleBindings (plus the default
//! ClusterRoles): prints p50/p99/max per decision. Run: `cargo bench -p ferroflux-apiserver`.

use std::time::Instant;

use ferroflux_apiserver::rbac::{
    Attributes, Policy, UserInfo, default_cluster_role_bindings, default_cluster_roles,
};
use serde_json::json;

fn main() {
    let namespaces = 100;
    let per_ns = 10;
    let mut roles = Vec::new();
    let mut bindings = Vec::new();
    for n in 0..namespaces {
        for r in 0..per_ns {
            let ns = format!("team-{n}");
            roles.push(json!({"metadata": {"namespace": ns, "name": format!("role-{r}")},
                "rules": [
                    {"apiGroups": ["", "apps"], "resources": ["deployments", "services", "configmaps"], "verbs": ["get", "list", "create"]},
                    {"apiGroups": [""], "resources": ["secrets"], "resourceNames": [format!("s-{r}")], "verbs": ["get"]}
                ]}));
            bindings.push(json!({"metadata": {"namespace": ns, "name": format!("rb-{r}")},
                "roleRef": {"kind": "Role", "name": format!("role-{r}")},
                "subjects": [{"kind": "ServiceAccount", "name": format!("sa-{r}"), "namespace": ns}]}));
        }
    }
    let started = Instant::now();
    let policy = Policy::new(
        &roles,
        &default_cluster_roles(),
        &bindings,
        &default_cluster_role_bindings(),
    );
    let build = started.elapsed();
    let verbs = ["get", "list", "create", "delete"];
    let mut samples = Vec::with_capacity(100_000);
    let mut allowed = 0usize;
    for i in 0..100_000usize {
        let ns = format!("team-{}", i % namespaces);
        let user = UserInfo::service_account(&ns, &format!("sa-{}", i % per_ns));
        let a = Attributes::resource(&user, verbs[i % 4], "apps", "deployments", &ns, "");
        let t = Instant::now();
        let d = policy.authorize(&a);
        samples.push(t.elapsed().as_nanos() as u64);
        allowed += usize::from(d.allowed);
    }
    samples.sort_unstable();
    let pct = |p: f64| samples[((samples.len() as f64 - 1.0) * p) as usize] as f64 / 1000.0;
    println!(
        "rbac: 1000 Roles + 1000 RoleBindings; policy build {:.2} ms; per decision p50 {:.2} µs, p99 {:.2} µs, max {:.2} µs ({} of {} allowed)",
        build.as_secs_f64() * 1000.0,
        pct(0.5),
        pct(0.99),
        pct(1.0),
        allowed,
        samples.len()
    );
}
