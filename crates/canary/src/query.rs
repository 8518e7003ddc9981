//! Metric queries: Flagger's builtin queries of the `kubernetes` and `gatewayapi` providers
//! (its `HttpObserver`), MetricTemplate rendering as Flagger renders it (Go `text/template`
//! with the functions `name`, `namespace`, `target`, `service`, `ingress`, `route`,
//! `interval` and `variables`, `missingkey=error`), the thresholds and Prometheus' answer.

use std::collections::BTreeMap;

use ferroflux_api::flagger::{Canary, CanaryMetric};
use ferroflux_gotemplate::{Map, MissingKey, Options, Template, Value, func};

/// Longest query template accepted (tenant-written).
pub const MAX_TEMPLATE: usize = 16 * 1024;
/// Longest rendered query.
pub const MAX_QUERY: usize = 64 * 1024;

/// Flagger's `request-success-rate` of the `kubernetes`/`gatewayapi` providers.
pub const REQUEST_SUCCESS_RATE: &str = r#"
	sum(
		rate(
			http_request_duration_seconds_count{
				kubernetes_namespace="{{ namespace }}",
				kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)",
				status!~"5.*"
			}[{{ interval }}]
		)
	) 
	/ 
	sum(
		rate(
			http_request_duration_seconds_count{
				kubernetes_namespace="{{ namespace }}",
				kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"
			}[{{ interval }}]
		)
	) 
	* 100"#;

/// Flagger's `request-duration` (seconds, p99) of the `kubernetes`/`gatewayapi` providers.
pub const REQUEST_DURATION: &str = r#"
	histogram_quantile(
		0.99,
		sum(
			rate(
				http_request_duration_seconds_bucket{
					kubernetes_namespace="{{ namespace }}",
					kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"
				}[{{ interval }}]
			)
		) by (le)
	)"#;

/// What a query template sees (Flagger's `MetricTemplateModel`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Model {
    /// The Canary's name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// The target's name.
    pub target: String,
    /// The Service name.
    pub service: String,
    /// The ingress name.
    pub ingress: String,
    /// The route name.
    pub route: String,
    /// The metric's window.
    pub interval: String,
    /// The metric's template variables.
    pub variables: BTreeMap<String, String>,
}

impl Model {
    /// Flagger's `toMetricModel` of `canary` for `metric`.
    pub fn new(canary: &Canary, metric: &CanaryMetric) -> Model {
        let target = canary.spec.target_ref.name.clone();
        Model {
            name: canary.metadata.name.clone().unwrap_or_default(),
            namespace: canary.metadata.namespace.clone().unwrap_or_default(),
            service: canary
                .spec
                .service
                .name
                .clone()
                .unwrap_or_else(|| target.clone()),
            ingress: canary
                .spec
                .ingress_ref
                .as_ref()
                .map_or_else(|| target.clone(), |r| r.name.clone()),
            route: target.clone(),
            target,
            interval: metric
                .interval
                .clone()
                .unwrap_or_else(|| crate::spec::DEFAULT_METRIC_INTERVAL.to_string()),
            variables: metric.template_variables.clone().unwrap_or_default(),
        }
    }
}

/// Why a query could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The template is longer than [`MAX_TEMPLATE`].
    #[error("template parsing failed: the query is longer than {MAX_TEMPLATE} bytes")]
    TooLong,
    /// Go's parser refused it.
    #[error("template parsing failed: {0}")]
    Parse(String),
    /// Executing it failed (a missing variable, too much output).
    #[error("template excution failed: {0}")]
    Execute(String),
}

/// Renders `query` with `model` as Flagger's `RenderQuery` (Flagger's own misspelled message
/// "template excution failed" kept).
pub fn render(query: &str, model: &Model) -> Result<String, RenderError> {
    if query.len() > MAX_TEMPLATE {
        return Err(RenderError::TooLong);
    }
    let mut funcs = ferroflux_gotemplate::FuncMap::new();
    for (name, value) in [
        ("name", &model.name),
        ("namespace", &model.namespace),
        ("target", &model.target),
        ("service", &model.service),
        ("ingress", &model.ingress),
        ("route", &model.route),
        ("interval", &model.interval),
    ] {
        let value = value.clone();
        funcs.insert(
            name.to_string(),
            func(move |_| Ok(Value::from(value.clone()))),
        );
    }
    let mut variables = Map::new();
    for (key, value) in &model.variables {
        variables.insert(key.as_str().into(), Value::from(value.clone()));
    }
    let variables = Value::map(variables);
    funcs.insert(
        "variables".to_string(),
        func(move |_| Ok(variables.clone())),
    );
    let mut template = Template::with_funcs(funcs);
    template.options(Options {
        missing_key: MissingKey::Error,
        max_output: MAX_QUERY,
        max_steps: 100_000,
        ..Options::default()
    });
    template
        .parse("tmpl", query)
        .map_err(|e| RenderError::Parse(e.to_string()))?;
    template
        .execute("tmpl", &Value::Nil)
        .map_err(|e| RenderError::Execute(e.to_string()))
}

/// Why Prometheus' answer has no value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResultError {
    /// An empty result (Flagger's `ErrNoValuesFound`).
    #[error("no values found")]
    NoValues,
    /// Not Prometheus' JSON, or an error status.
    #[error("{0}")]
    Invalid(String),
}

/// The value of Prometheus' `/api/v1/query` answer: the first sample of a vector or a
/// scalar, as Flagger's Prometheus provider reads it (NaN counts as no value).
pub fn prometheus_value(body: &[u8]) -> Result<f64, ResultError> {
    let answer: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ResultError::Invalid(format!("error unmarshaling result: {e}")))?;
    if answer["status"] != "success" {
        let error = answer["error"].as_str().unwrap_or("unknown error");
        return Err(ResultError::Invalid(format!("prometheus error: {error}")));
    }
    let data = &answer["data"];
    let sample = match data["resultType"].as_str() {
        Some("vector") => data["result"]
            .as_array()
            .and_then(|r| r.first())
            .map(|s| &s["value"]),
        Some("scalar") => Some(&data["result"]),
        _ => None,
    };
    let text = sample
        .and_then(|v| v.get(1))
        .and_then(|v| v.as_str())
        .ok_or(ResultError::NoValues)?;
    let value: f64 = text
        .parse()
        .map_err(|_| ResultError::Invalid(format!("invalid value {text:?}")))?;
    if value.is_nan() {
        return Err(ResultError::NoValues);
    }
    Ok(value)
}

/// Flagger's verdict on a metric value: `None` when it passes, else its Halt message.
pub fn check(canary_id: &str, metric: &CanaryMetric, value: f64) -> Option<String> {
    let range = metric.threshold_range.clone().unwrap_or_default();
    let (min, max) = if metric.threshold_range.is_some() {
        (range.min, range.max)
    } else if metric.name == "request-success-rate" {
        (metric.threshold, None)
    } else {
        (None, metric.threshold)
    };
    match metric.name.as_str() {
        "request-success-rate" => {
            if let Some(min) = min.filter(|m| value < *m) {
                return Some(format!(
                    "Halt {canary_id} advancement success rate {value:.2}% < {}%",
                    go_float(min)
                ));
            }
            max.filter(|m| value > *m).map(|max| {
                format!(
                    "Halt {canary_id} advancement success rate {value:.2}% > {}%",
                    go_float(max)
                )
            })
        }
        "request-duration" => {
            // Flagger compares milliseconds, printed as Go durations.
            let ms = (value * 1000.0).trunc();
            if let Some(min) = min.filter(|m| ms < *m) {
                return Some(format!(
                    "Halt {canary_id} advancement request duration {} < {}",
                    go_ms(ms),
                    go_ms(min)
                ));
            }
            max.filter(|m| ms > *m).map(|max| {
                format!(
                    "Halt {canary_id} advancement request duration {} > {}",
                    go_ms(ms),
                    go_ms(max)
                )
            })
        }
        name => {
            if let Some(min) = min.filter(|m| value < *m) {
                return Some(format!(
                    "Halt {canary_id} advancement {name} {value:.2} < {}",
                    go_float(min)
                ));
            }
            max.filter(|m| value > *m).map(|max| {
                format!(
                    "Halt {canary_id} advancement {name} {value:.2} > {}",
                    go_float(max)
                )
            })
        }
    }
}

/// A float as Go's `%v` prints it for the usual thresholds (`99`, `99.5`).
fn go_float(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

/// Milliseconds as Go's `time.Duration` prints them (`500ms`, `1.5s`, `1m30s`).
fn go_ms(ms: f64) -> String {
    let nanos = (ms.clamp(0.0, 1e12) as i64).saturating_mul(1_000_000);
    ferroflux_gocompat::duration::format(nanos)
}
