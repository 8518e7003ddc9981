//! Flux's Prometheus metrics: `gotk_reconcile_duration_seconds` (a histogram per object) and
//! `gotk_reconcile_condition` (1 for an object's current condition status, 0 for the others),
//! served in the OpenMetrics text format.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use ferroflux_api::meta::Condition;

type Labels = Vec<(String, String)>;

/// The metrics of one controller process.
pub struct Metrics {
    registry: Registry,
    durations: Family<Labels, Histogram>,
    conditions: Family<Labels, Gauge>,
}

impl Metrics {
    /// Registers Flux's metrics.
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::default();
        let durations = Family::<Labels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(1e-8, 10.0, 10))
        });
        let conditions = Family::<Labels, Gauge>::default();
        registry.register(
            "gotk_reconcile_duration_seconds",
            "The duration in seconds of a GitOps Toolkit resource reconciliation.",
            durations.clone(),
        );
        registry.register(
            "gotk_reconcile_condition",
            "The current condition status of a GitOps Toolkit resource reconciliation.",
            conditions.clone(),
        );
        Arc::new(Metrics {
            registry,
            durations,
            conditions,
        })
    }

    fn object(kind: &str, namespace: &str, name: &str) -> Labels {
        vec![
            ("kind".into(), kind.into()),
            ("name".into(), name.into()),
            ("namespace".into(), namespace.into()),
        ]
    }

    /// Records how long one reconciliation of an object took.
    pub fn observe(&self, kind: &str, namespace: &str, name: &str, took: Duration) {
        self.durations
            .get_or_create(&Self::object(kind, namespace, name))
            .observe(took.as_secs_f64());
    }

    /// Sets the condition gauges of an object from its conditions.
    pub fn record_conditions(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
        conditions: &[Condition],
    ) {
        for condition in conditions {
            for status in ["True", "False", "Unknown"] {
                let mut labels = Self::object(kind, namespace, name);
                labels.push(("status".into(), status.into()));
                labels.push(("type".into(), condition.type_.clone()));
                let value = i64::from(condition.status == status);
                self.conditions.get_or_create(&labels).set(value);
            }
        }
    }

    /// The metrics in the OpenMetrics text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use ferroflux_api::meta::Time;

    use super::*;

    #[test]
    fn durations_and_conditions_are_exported() {
        let metrics = Metrics::new();
        metrics.observe(
            "Kustomization",
            "flux-system",
            "apps",
            Duration::from_millis(120),
        );
        let ready = Condition {
            type_: "Ready".into(),
            status: "True".into(),
            reason: "ReconciliationSucceeded".into(),
            message: String::new(),
            observed_generation: None,
            last_transition_time: Time(jiff::Timestamp::UNIX_EPOCH),
        };
        metrics.record_conditions("Kustomization", "flux-system", "apps", &[ready]);
        let text = metrics.render();
        assert!(text.contains("gotk_reconcile_duration_seconds_count{kind=\"Kustomization\",name=\"apps\",namespace=\"flux-system\"} 1"), "{text}");
        assert!(text.contains("gotk_reconcile_condition{kind=\"Kustomization\",name=\"apps\",namespace=\"flux-system\",status=\"True\",type=\"Ready\"} 1"), "{text}");
        assert!(text.contains("gotk_reconcile_condition{kind=\"Kustomization\",name=\"apps\",namespace=\"flux-system\",status=\"False\",type=\"Ready\"} 0"), "{text}");
    }
}
