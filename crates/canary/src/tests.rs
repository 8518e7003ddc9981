use super::*;
use ferroflux_api::flagger::{
    CanaryAnalysis, CanaryMetric, CanarySpec, CanaryWebhook, LocalObjectReference, ThresholdRange,
};

fn canary(provider: &str, analysis: CanaryAnalysis) -> Canary {
    let mut canary = Canary::new(
        "podinfo",
        CanarySpec {
            provider: Some(provider.into()),
            target_ref: LocalObjectReference {
                api_version: Some("apps/v1".into()),
                kind: Some("Deployment".into()),
                name: "podinfo".into(),
            },
            analysis: Some(analysis),
            ..CanarySpec::default()
        },
    );
    canary.metadata.namespace = Some("team-a".into());
    canary.status = Some(CanaryStatus {
        phase: Some(phase::INITIALIZED.into()),
        last_applied_spec: Some("v1".into()),
        ..CanaryStatus::default()
    });
    canary
}

fn progressive() -> CanaryAnalysis {
    CanaryAnalysis {
        interval: Some("1s".into()),
        threshold: Some(2),
        max_weight: Some(50),
        step_weight: Some(10),
        metrics: Some(vec![CanaryMetric {
            name: "request-success-rate".into(),
            threshold_range: Some(ThresholdRange {
                min: Some(99.0),
                max: None,
            }),
            ..CanaryMetric::default()
        }]),
        ..CanaryAnalysis::default()
    }
}

/// A tiny world: the router's weights, the target's replicas and the primary's spec.
struct World {
    primary: i32,
    canary: i32,
    target_scaled: bool,
    primary_spec: String,
    hooks_run: Vec<&'static str>,
}

/// Runs one tick with `answer` deciding every gate; returns the decision.
fn tick(
    c: &mut Canary,
    world: &mut World,
    hash: &str,
    answer: &dyn Fn(Gate) -> GateResult,
) -> Decision {
    let observed = Observed {
        target_hash: hash.into(),
        primary: Readiness::Ready,
        canary: Readiness::Ready,
        primary_weight: world.primary,
        canary_weight: world.canary,
    };
    let mut gates = Gates::default();
    let decision = loop {
        match decide(c, &observed, &gates) {
            Step::Run(gate) => gates.set(gate, answer(gate)),
            Step::Decided(d) => break d,
        }
    };
    for action in &decision.actions {
        match action {
            Action::ScaleTargetFromZero => world.target_scaled = true,
            Action::ScaleTargetToZero => world.target_scaled = false,
            Action::SetRoutes { primary, canary } => {
                world.primary = *primary;
                world.canary = *canary;
            }
            Action::Promote => world.primary_spec = hash.into(),
            Action::PostRolloutHooks(p) => world.hooks_run.push(p),
        }
    }
    c.status = Some(next_status(
        c,
        &decision.status,
        hash,
        "2026-01-01T00:00:00Z",
    ));
    decision
}

fn world() -> World {
    World {
        primary: 100,
        canary: 0,
        target_scaled: false,
        primary_spec: "v1".into(),
        hooks_run: Vec::new(),
    }
}

fn pass(_: Gate) -> GateResult {
    Ok(())
}

fn phase_of(c: &Canary) -> String {
    c.status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default()
}

#[test]
fn a_new_revision_progresses_in_steps_to_max_weight_and_promotes() {
    let mut c = canary("gatewayapi:v1", progressive());
    let mut w = world();
    let mut trail = Vec::new();
    let mut messages = Vec::new();
    for _ in 0..20 {
        let d = tick(&mut c, &mut w, "v2", &pass);
        messages.extend(d.events.into_iter().map(|e| e.message));
        let status = c.status.clone().unwrap_or_default();
        trail.push((phase_of(&c), status.canary_weight.unwrap_or(0)));
        if phase_of(&c) == phase::SUCCEEDED {
            break;
        }
    }
    let expected: Vec<(String, i32)> = [
        (phase::PROGRESSING, 0),
        (phase::PROGRESSING, 10),
        (phase::PROGRESSING, 20),
        (phase::PROGRESSING, 30),
        (phase::PROGRESSING, 40),
        (phase::PROGRESSING, 50),
        (phase::PROMOTING, 50),
        (phase::FINALISING, 0),
        (phase::SUCCEEDED, 0),
    ]
    .iter()
    .map(|(p, w)| (p.to_string(), *w))
    .collect();
    assert_eq!(trail, expected);
    assert_eq!(w.primary_spec, "v2");
    assert!(
        !w.target_scaled,
        "the target is scaled down after promotion"
    );
    assert_eq!((w.primary, w.canary), (100, 0));
    assert_eq!(w.hooks_run, vec![phase::SUCCEEDED]);
    assert!(messages.contains(&"New revision detected! Scaling up podinfo.team-a".to_string()));
    assert!(messages.contains(&"Starting canary analysis for podinfo.team-a".to_string()));
    assert!(messages.contains(&"Advance podinfo.team-a canary weight 10".to_string()));
    assert!(
        messages.contains(
            &"Copying podinfo.team-a template spec to podinfo-primary.team-a".to_string()
        )
    );
    assert!(messages.contains(&"Routing all traffic to primary".to_string()));
    assert!(messages.contains(&"Promotion completed! Scaling down podinfo.team-a".to_string()));
    let condition = &c.status.unwrap_or_default().conditions.unwrap_or_default()[0];
    assert_eq!(condition.reason.as_deref(), Some(phase::SUCCEEDED));
    assert_eq!(condition.status, "True");
}

#[test]
fn failed_checks_roll_back_after_the_threshold() {
    let mut c = canary("gatewayapi:v1", progressive());
    let mut w = world();
    tick(&mut c, &mut w, "v2", &pass); // Progressing, scaled up
    tick(&mut c, &mut w, "v2", &pass); // weight 10
    assert_eq!(w.canary, 10);
    let fail = |gate: Gate| {
        if gate == Gate::Analysis {
            Err("request-success-rate".to_string())
        } else {
            pass(gate)
        }
    };
    tick(&mut c, &mut w, "v2", &fail);
    assert_eq!(c.status.as_ref().and_then(|s| s.failed_checks), Some(1));
    tick(&mut c, &mut w, "v2", &fail);
    assert_eq!(c.status.as_ref().and_then(|s| s.failed_checks), Some(2));
    assert_eq!(phase_of(&c), phase::PROGRESSING);
    let d = tick(&mut c, &mut w, "v2", &fail);
    assert_eq!(phase_of(&c), phase::FAILED);
    assert_eq!((w.primary, w.canary), (100, 0));
    assert!(!w.target_scaled);
    assert_eq!(w.primary_spec, "v1", "the primary keeps the old revision");
    let messages: Vec<_> = d.events.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        messages,
        vec![
            "Rolling back podinfo.team-a failed checks threshold reached 2",
            "Canary failed! Scaling down podinfo.team-a"
        ]
    );
    let status = c.status.clone().unwrap_or_default();
    assert_eq!(status.canary_weight, Some(0));
    let condition = &status.conditions.unwrap_or_default()[0];
    assert_eq!(condition.status, "False");
    assert_eq!(
        condition.message.as_deref(),
        Some("Canary analysis failed, Deployment scaled to zero.")
    );
    // The failed revision stays failed; a new one starts again.
    let d = tick(&mut c, &mut w, "v2", &pass);
    assert!(d.actions.is_empty() && phase_of(&c) == phase::FAILED);
    tick(&mut c, &mut w, "v3", &pass);
    assert_eq!(phase_of(&c), phase::PROGRESSING);
}

#[test]
fn kubernetes_provider_runs_blue_green_iterations() {
    let analysis = CanaryAnalysis {
        iterations: Some(2),
        threshold: Some(1),
        ..CanaryAnalysis::default()
    };
    let mut c = canary("kubernetes", analysis);
    let mut w = world();
    let mut messages = Vec::new();
    let mut phases = Vec::new();
    for _ in 0..10 {
        let d = tick(&mut c, &mut w, "v2", &pass);
        messages.extend(d.events.into_iter().map(|e| e.message));
        phases.push(phase_of(&c));
        assert_eq!((w.primary, w.canary), (100, 0), "no traffic shifting");
        if phase_of(&c) == phase::SUCCEEDED {
            break;
        }
    }
    assert!(messages.contains(&"Advance podinfo.team-a canary iteration 1/2".to_string()));
    assert!(messages.contains(&"Advance podinfo.team-a canary iteration 2/2".to_string()));
    assert_eq!(phases.iter().filter(|p| *p == phase::PROMOTING).count(), 1);
    assert_eq!(phases.last().map(String::as_str), Some(phase::SUCCEEDED));
    assert_eq!(w.primary_spec, "v2");
}

#[test]
fn confirm_rollout_holds_in_waiting_until_approved() {
    let mut analysis = progressive();
    analysis.webhooks = Some(vec![CanaryWebhook {
        name: "gate".into(),
        hook_type: Some("confirm-rollout".into()),
        url: "http://gate/".into(),
        ..CanaryWebhook::default()
    }]);
    let mut c = canary("gatewayapi:v1", analysis);
    let mut w = world();
    let deny = |gate: Gate| {
        if gate == Gate::ConfirmRollout {
            Err("gate".to_string())
        } else {
            Ok(())
        }
    };
    let d = tick(&mut c, &mut w, "v2", &deny);
    assert_eq!(phase_of(&c), phase::WAITING);
    assert_eq!(
        d.events[0].message,
        "Halt podinfo.team-a advancement waiting for approval gate"
    );
    assert!(!w.target_scaled);
    tick(&mut c, &mut w, "v2", &pass);
    assert_eq!(phase_of(&c), phase::PROGRESSING);
    assert!(w.target_scaled);
}

#[test]
fn skip_analysis_promotes_at_once() {
    let mut c = canary("gatewayapi:v1", progressive());
    c.spec.skip_analysis = Some(true);
    let mut w = world();
    tick(&mut c, &mut w, "v2", &pass);
    assert_eq!(phase_of(&c), phase::PROGRESSING);
    let d = tick(&mut c, &mut w, "v2", &pass);
    assert_eq!(phase_of(&c), phase::SUCCEEDED);
    assert_eq!(w.primary_spec, "v2");
    assert_eq!(
        d.events.last().map(|e| e.message.as_str()),
        Some("Promotion completed! Canary analysis was skipped for podinfo.team-a")
    );
}

#[test]
fn a_new_revision_during_the_analysis_restarts_it() {
    let mut c = canary("gatewayapi:v1", progressive());
    let mut w = world();
    tick(&mut c, &mut w, "v2", &pass);
    tick(&mut c, &mut w, "v2", &pass);
    tick(&mut c, &mut w, "v2", &pass);
    assert_eq!(w.canary, 20);
    let d = tick(&mut c, &mut w, "v3", &pass);
    assert_eq!(
        d.events[0].message,
        "New revision detected! Restarting analysis for podinfo.team-a"
    );
    assert_eq!((w.primary, w.canary), (100, 0));
    let status = c.status.unwrap_or_default();
    assert_eq!(status.canary_weight, Some(0));
    assert_eq!(status.last_applied_spec.as_deref(), Some("v3"));
}

#[test]
fn a_canary_past_its_progress_deadline_rolls_back() {
    let mut c = canary("gatewayapi:v1", progressive());
    let mut w = world();
    tick(&mut c, &mut w, "v2", &pass);
    let observed = Observed {
        target_hash: "v2".into(),
        primary: Readiness::Ready,
        canary: Readiness::DeadlineExceeded("podinfo exceeded its progress deadline".into()),
        primary_weight: 100,
        canary_weight: 0,
    };
    let Step::Decided(d) = decide(&c, &observed, &Gates::default()) else {
        panic!("decides without gates");
    };
    assert_eq!(
        d.status,
        StatusUpdate::Sync {
            phase: phase::FAILED,
            canary_weight: 0,
            failed_checks: 0,
            iterations: 0
        }
    );
    assert_eq!(
        d.events[0].message,
        "Rolling back podinfo.team-a progress deadline exceeded podinfo exceeded its progress deadline"
    );
}

#[test]
fn step_weights_follow_flaggers_formulas() {
    let mut a = Analysis::of(&canary("gatewayapi:v1", progressive()));
    assert_eq!(a.max_weight(), 50);
    assert_eq!(a.next_step_weight(0), 10);
    a.step_weight = 0;
    a.step_weights = vec![1, 5, 25, 80];
    assert_eq!(a.max_weight(), 80);
    assert_eq!(a.next_step_weight(0), 1);
    assert_eq!(a.next_step_weight(1), 4);
    assert_eq!(a.next_step_weight(5), 20);
    assert_eq!(a.next_step_weight(25), 55);
    assert_eq!(a.next_step_weight(100), 1);
    a.step_weights = vec![];
    a.max_weight = 0;
    assert_eq!(a.max_weight(), 100);
}

#[test]
fn unsupported_fields_are_refused_by_name() {
    let mut analysis = progressive();
    analysis.mirror = Some(true);
    analysis.r#match = Some(vec![serde_json::json!({"headers": {}})]);
    let mut c = canary("istio", analysis);
    c.spec.target_ref.kind = Some("DaemonSet".into());
    let refused = spec::refusals(&c).join("\n");
    assert!(
        refused.contains("spec.provider \"istio\" is not supported"),
        "{refused}"
    );
    assert!(refused.contains("spec.analysis.mirror"), "{refused}");
    assert!(refused.contains("spec.analysis.match"), "{refused}");
    assert!(
        refused.contains("spec.targetRef.kind \"DaemonSet\""),
        "{refused}"
    );
    let ok = canary("kubernetes", progressive());
    assert_eq!(spec::refusals(&ok), Vec::<String>::new());
}

#[test]
fn queries_render_as_flagger_renders_them() {
    let c = canary("kubernetes", progressive());
    let metric = CanaryMetric {
        name: "errors".into(),
        interval: Some("30s".into()),
        template_variables: Some([("code".to_string(), "5..".to_string())].into()),
        ..CanaryMetric::default()
    };
    let model = query::Model::new(&c, &metric);
    let text = query::render(
        "rate(x{ns=\"{{ namespace }}\",app=\"{{ target }}\",c=~\"{{ variables.code }}\"}[{{ interval }}])",
        &model,
    );
    assert_eq!(
        text.as_deref(),
        Ok("rate(x{ns=\"team-a\",app=\"podinfo\",c=~\"5..\"}[30s])")
    );
    let builtin = query::render(query::REQUEST_SUCCESS_RATE, &model).unwrap_or_default();
    assert!(builtin.contains("kubernetes_pod_name=~\"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)\""));
    let missing = query::render("{{ variables.nope }}", &model).expect_err("missing key");
    assert!(
        missing.to_string().starts_with("template excution failed"),
        "{missing}"
    );
    let bad = query::render("{{ nope }}", &model).expect_err("unknown function");
    assert!(
        bad.to_string().starts_with("template parsing failed"),
        "{bad}"
    );
    let huge = "x".repeat(query::MAX_TEMPLATE + 1);
    assert_eq!(
        query::render(&huge, &model),
        Err(query::RenderError::TooLong)
    );
}

#[test]
fn prometheus_answers_and_thresholds() {
    let vector = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"97.5"]}]}}"#;
    assert_eq!(query::prometheus_value(vector), Ok(97.5));
    let empty = br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
    assert_eq!(
        query::prometheus_value(empty),
        Err(query::ResultError::NoValues)
    );
    let nan =
        br#"{"status":"success","data":{"resultType":"vector","result":[{"value":[1,"NaN"]}]}}"#;
    assert_eq!(
        query::prometheus_value(nan),
        Err(query::ResultError::NoValues)
    );
    assert!(query::prometheus_value(b"<html>").is_err());
    let metric = &progressive().metrics.unwrap_or_default()[0];
    assert_eq!(query::check("podinfo.team-a", metric, 99.5), None);
    assert_eq!(
        query::check("podinfo.team-a", metric, 97.5).as_deref(),
        Some("Halt podinfo.team-a advancement success rate 97.50% < 99%")
    );
    let duration = CanaryMetric {
        name: "request-duration".into(),
        threshold_range: Some(ThresholdRange {
            min: None,
            max: Some(500.0),
        }),
        ..CanaryMetric::default()
    };
    assert_eq!(
        query::check("podinfo.team-a", &duration, 1.5).as_deref(),
        Some("Halt podinfo.team-a advancement request duration 1.5s > 500ms")
    );
}

#[test]
fn webhook_payload_has_flaggers_fields() {
    let c = canary("kubernetes", progressive());
    let hook = CanaryWebhook {
        name: "load".into(),
        url: "http://x/".into(),
        metadata: Some([("cmd".to_string(), "hey".to_string())].into()),
        ..CanaryWebhook::default()
    };
    let body = webhook::payload(&c, phase::PROGRESSING, &hook);
    assert_eq!(body["name"], "podinfo");
    assert_eq!(body["namespace"], "team-a");
    assert_eq!(body["phase"], "Progressing");
    assert_eq!(body["metadata"]["cmd"], "hey");
    assert!(body["checksum"].as_str().is_some_and(|s| !s.is_empty()));
    let event = webhook::event_payload(&c, &hook, "hello", "Normal", 7);
    assert_eq!(event["metadata"]["eventMessage"], "hello");
    assert_eq!(event["metadata"]["timestamp"], "7");
}

#[test]
fn durations_parse_and_intervals_have_flaggers_floor() {
    use std::time::Duration;
    assert_eq!(spec::parse_duration("1m30s"), Some(Duration::from_secs(90)));
    assert_eq!(
        spec::parse_duration("500ms"),
        Some(Duration::from_millis(500))
    );
    assert_eq!(spec::parse_duration("x"), None);
    assert_eq!(spec::parse_duration("99999999999h"), None);
    let c = canary("kubernetes", progressive());
    assert_eq!(
        spec::interval(&c, spec::MIN_INTERVAL),
        Duration::from_secs(10)
    );
    assert_eq!(
        spec::interval(&c, Duration::from_secs(1)),
        Duration::from_secs(1)
    );
}

#[test]
fn spec_hash_is_stable_and_changes_with_the_template() {
    let a = spec_hash(&serde_json::json!({"containers": [{"image": "a:1"}]}));
    let b = spec_hash(&serde_json::json!({"containers": [{"image": "a:2"}]}));
    assert_eq!(
        a,
        spec_hash(&serde_json::json!({"containers": [{"image": "a:1"}]}))
    );
    assert_ne!(a, b);
    assert_eq!(a.len(), 16);
}
