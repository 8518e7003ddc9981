//! Flagger's canary analysis as pure decisions (no I/O): what one tick of a Canary does next.
//!
//! The controller observes the world (the target's spec hash, the primary's and the canary's
//! readiness, the routes) and asks [`decide`]; when the decision depends on a webhook or on the
//! metrics, [`decide`] answers [`Step::Run`] with the [`Gate`] to evaluate, and the controller
//! asks again with its result in [`Gates`]. The answer is a [`Decision`]: the [`StatusUpdate`]
//! (applied with [`next_status`]), the [`Action`]s in order and Flagger's events.
//!
//! - [`spec`]: the analysis settings with Flagger's defaults and weight formulas, and the
//!   fields ferroflux refuses ([`spec::refusals`]).
//! - [`query`]: the builtin metric queries and MetricTemplate rendering.
//! - [`webhook`]: Flagger's webhook payload.

#![deny(missing_docs)]

pub mod query;
pub mod spec;
pub mod webhook;

use ferroflux_api::flagger::{Canary, CanaryCondition, CanaryStatus};

pub use spec::Analysis;

/// Flagger's phases.
pub mod phase {
    /// The primary is being created.
    pub const INITIALIZING: &str = "Initializing";
    /// The primary serves; no analysis runs.
    pub const INITIALIZED: &str = "Initialized";
    /// A confirm-rollout webhook holds the analysis.
    pub const WAITING: &str = "Waiting";
    /// The analysis runs.
    pub const PROGRESSING: &str = "Progressing";
    /// A confirm-promotion webhook holds the promotion.
    pub const WAITING_PROMOTION: &str = "WaitingPromotion";
    /// The canary's spec was copied to the primary.
    pub const PROMOTING: &str = "Promoting";
    /// All traffic goes back to the primary.
    pub const FINALISING: &str = "Finalising";
    /// The promotion finished.
    pub const SUCCEEDED: &str = "Succeeded";
    /// The canary was rolled back.
    pub const FAILED: &str = "Failed";
}

/// Flagger's only condition type.
pub const PROMOTED: &str = "Promoted";

/// Flagger's total weight: primary and canary weights add up to it.
pub const TOTAL_WEIGHT: i32 = 100;

/// How ready a workload is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Ready.
    Ready,
    /// Not ready yet (the message says why); the tick stops and the next one looks again.
    NotReady(String),
    /// The progress deadline passed: not worth waiting for.
    DeadlineExceeded(String),
}

/// What the controller observed before the tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// The hash of the target's pod template (and tracked configs) now.
    pub target_hash: String,
    /// The primary's readiness.
    pub primary: Readiness,
    /// The canary's (target's) readiness.
    pub canary: Readiness,
    /// The weight the router sends to the primary.
    pub primary_weight: i32,
    /// The weight the router sends to the canary.
    pub canary_weight: i32,
}

/// A check whose result the decision needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// `confirm-rollout` webhooks: may the analysis start?
    ConfirmRollout,
    /// `pre-rollout` webhooks, before the first step.
    PreRollout,
    /// `rollback` webhooks: does one ask for a rollback?
    Rollback,
    /// `rollout` webhooks and the metrics of one analysis step.
    Analysis,
    /// `confirm-traffic-increase` webhooks.
    ConfirmTrafficIncrease,
    /// `confirm-promotion` webhooks.
    ConfirmPromotion,
}

impl Gate {
    /// The webhook type that belongs to the gate (`Analysis` also runs untyped hooks).
    pub fn hook_type(self) -> &'static str {
        match self {
            Gate::ConfirmRollout => "confirm-rollout",
            Gate::PreRollout => "pre-rollout",
            Gate::Rollback => "rollback",
            Gate::Analysis => "rollout",
            Gate::ConfirmTrafficIncrease => "confirm-traffic-increase",
            Gate::ConfirmPromotion => "confirm-promotion",
        }
    }
}

/// The outcome of a gate: passed, or held with the name of the hook (or the metric) that held.
pub type GateResult = Result<(), String>;

/// The results of the gates evaluated so far in this tick.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gates {
    /// [`Gate::ConfirmRollout`].
    pub confirm_rollout: Option<GateResult>,
    /// [`Gate::PreRollout`].
    pub pre_rollout: Option<GateResult>,
    /// [`Gate::Rollback`]: `Ok` when a rollback hook asks for the rollback.
    pub rollback: Option<GateResult>,
    /// [`Gate::Analysis`].
    pub analysis: Option<GateResult>,
    /// [`Gate::ConfirmTrafficIncrease`].
    pub confirm_traffic_increase: Option<GateResult>,
    /// [`Gate::ConfirmPromotion`].
    pub confirm_promotion: Option<GateResult>,
}

impl Gates {
    fn get(&self, gate: Gate) -> Option<&GateResult> {
        match gate {
            Gate::ConfirmRollout => self.confirm_rollout.as_ref(),
            Gate::PreRollout => self.pre_rollout.as_ref(),
            Gate::Rollback => self.rollback.as_ref(),
            Gate::Analysis => self.analysis.as_ref(),
            Gate::ConfirmTrafficIncrease => self.confirm_traffic_increase.as_ref(),
            Gate::ConfirmPromotion => self.confirm_promotion.as_ref(),
        }
    }

    /// Records the result of `gate`.
    pub fn set(&mut self, gate: Gate, result: GateResult) {
        let slot = match gate {
            Gate::ConfirmRollout => &mut self.confirm_rollout,
            Gate::PreRollout => &mut self.pre_rollout,
            Gate::Rollback => &mut self.rollback,
            Gate::Analysis => &mut self.analysis,
            Gate::ConfirmTrafficIncrease => &mut self.confirm_traffic_increase,
            Gate::ConfirmPromotion => &mut self.confirm_promotion,
        };
        *slot = Some(result);
    }
}

/// What the controller does, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Scale the target back to its replicas (the canary runs).
    ScaleTargetFromZero,
    /// Scale the target to zero.
    ScaleTargetToZero,
    /// Route these weights (primary, canary).
    SetRoutes {
        /// Weight of the primary.
        primary: i32,
        /// Weight of the canary.
        canary: i32,
    },
    /// Copy the target's pod template to the primary.
    Promote,
    /// Run the `post-rollout` webhooks with this phase.
    PostRolloutHooks(&'static str),
}

/// An event the tick records (Flagger records all of them with reason `Synced`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// A Warning rather than a Normal event.
    pub warning: bool,
    /// Flagger's message.
    pub message: String,
}

/// How the status changes, as Flagger's status setters change it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusUpdate {
    /// Nothing changes.
    None,
    /// Flagger's `SyncStatus`: phase, weight, failed checks and iterations replaced, the
    /// applied spec hash recorded.
    Sync {
        /// The phase.
        phase: &'static str,
        /// The canary weight.
        canary_weight: i32,
        /// The failed checks.
        failed_checks: i32,
        /// The iterations.
        iterations: i32,
    },
    /// Flagger's `SetStatusPhase` (resets weight and iterations outside the running phases).
    Phase(&'static str),
    /// Flagger's `SetStatusFailedChecks`.
    FailedChecks(i32),
    /// Flagger's `SetStatusWeight`.
    Weight(i32),
    /// Flagger's `SetStatusIterations`.
    Iterations(i32),
}

/// What one tick decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The status change.
    pub status: StatusUpdate,
    /// The actions, in order.
    pub actions: Vec<Action>,
    /// The events, in order.
    pub events: Vec<Event>,
}

/// The answer of [`decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Evaluate this gate, record it in [`Gates`] and call [`decide`] again.
    Run(Gate),
    /// The tick's decision.
    Decided(Decision),
}

/// A decision under construction.
struct Builder<'a> {
    canary: &'a Canary,
    decision: Decision,
}

impl<'a> Builder<'a> {
    fn new(canary: &'a Canary) -> Self {
        Builder {
            canary,
            decision: Decision {
                status: StatusUpdate::None,
                actions: Vec::new(),
                events: Vec::new(),
            },
        }
    }
    fn info(&mut self, message: String) -> &mut Self {
        self.decision.events.push(Event {
            warning: false,
            message,
        });
        self
    }
    fn warn(&mut self, message: String) -> &mut Self {
        self.decision.events.push(Event {
            warning: true,
            message,
        });
        self
    }
    fn act(&mut self, action: Action) -> &mut Self {
        self.decision.actions.push(action);
        self
    }
    fn status(&mut self, update: StatusUpdate) -> &mut Self {
        self.decision.status = update;
        self
    }
    fn done(self) -> Step {
        Step::Decided(self.decision)
    }
    /// `name.namespace` of the Canary.
    fn id(&self) -> String {
        format!("{}.{}", name(self.canary), namespace(self.canary))
    }
    /// `target.namespace`.
    fn target(&self) -> String {
        format!(
            "{}.{}",
            self.canary.spec.target_ref.name,
            namespace(self.canary)
        )
    }
    /// Flagger's `rollback`: all traffic to the primary, the target scaled to zero, Failed.
    fn rollback(mut self, failed_checks: i32, threshold: i32) -> Step {
        if failed_checks >= threshold {
            let id = self.id();
            self.warn(format!(
                "Rolling back {id} failed checks threshold reached {failed_checks}"
            ));
        }
        let id = self.id();
        self.act(Action::SetRoutes {
            primary: TOTAL_WEIGHT,
            canary: 0,
        })
        .warn(format!("Canary failed! Scaling down {id}"))
        .act(Action::ScaleTargetToZero)
        .status(StatusUpdate::Sync {
            phase: phase::FAILED,
            canary_weight: 0,
            failed_checks: 0,
            iterations: 0,
        })
        .act(Action::PostRolloutHooks(phase::FAILED));
        self.done()
    }
}

fn name(canary: &Canary) -> &str {
    canary.metadata.name.as_deref().unwrap_or_default()
}

fn namespace(canary: &Canary) -> &str {
    canary.metadata.namespace.as_deref().unwrap_or_default()
}

/// Whether the Canary has webhooks of `hook_type`.
pub fn has_hooks(canary: &Canary, hook_type: &str) -> bool {
    Analysis::of(canary).webhooks.iter().any(|hook| {
        let kind = hook.hook_type.as_deref().unwrap_or("");
        kind == hook_type || (hook_type == "rollout" && kind.is_empty())
    })
}

/// The result of `gate`, or the [`Step::Run`] that asks for it. A gate without webhooks (and,
/// for the analysis, without metrics) passes without asking; a rollback gate without hooks
/// asks for no rollback.
fn gate(canary: &Canary, gates: &Gates, gate: Gate) -> Result<GateResult, Step> {
    let needed = has_hooks(canary, gate.hook_type())
        || (gate == Gate::Analysis && !Analysis::of(canary).metrics.is_empty());
    if !needed {
        return Ok(if gate == Gate::Rollback {
            Err(String::new())
        } else {
            Ok(())
        });
    }
    gates.get(gate).cloned().ok_or(Step::Run(gate))
}

/// Phases in which the analysis is under way (Flagger's `shouldAdvance` without a change).
fn running(phase: &str) -> bool {
    matches!(
        phase,
        phase::PROGRESSING
            | phase::WAITING
            | phase::WAITING_PROMOTION
            | phase::PROMOTING
            | phase::FINALISING
    )
}

/// One tick of an initialized Canary, in the order of Flagger's scheduler (`advanceCanary`
/// after `setPhaseInitialized`): the change check, the primary's readiness, the start of a
/// new analysis (confirm-rollout), a new revision during the analysis, the canary's readiness,
/// `skipAnalysis`, rollback webhooks, promotion, finalisation, the threshold, the analysis
/// step and the traffic step (canary, or blue/green by iterations).
pub fn decide(canary: &Canary, observed: &Observed, gates: &Gates) -> Step {
    match decide_inner(canary, observed, gates) {
        Ok(step) | Err(step) => step,
    }
}

fn decide_inner(canary: &Canary, observed: &Observed, gates: &Gates) -> Result<Step, Step> {
    let analysis = Analysis::of(canary);
    let status = canary.status.clone().unwrap_or_default();
    let current = status.phase.as_deref().unwrap_or_default();
    let changed = status.last_applied_spec.as_deref() != Some(observed.target_hash.as_str());
    let failed_checks = status.failed_checks.unwrap_or(0);
    let iterations = status.iterations.unwrap_or(0);
    let mut b = Builder::new(canary);
    if !running(current) && !changed {
        return Ok(b.done());
    }
    if !analysis.skip {
        match &observed.primary {
            Readiness::Ready => {}
            Readiness::NotReady(message) => {
                b.warn(message.clone());
                return Ok(b.done());
            }
            Readiness::DeadlineExceeded(message) => {
                b.warn(message.clone());
                if matches!(current, phase::PROMOTING | phase::FINALISING) {
                    return Ok(b.done());
                }
                return Ok(b.rollback(failed_checks, analysis.threshold));
            }
        }
    }
    // Flagger's checkCanaryStatus: a change outside a running analysis starts one.
    if !matches!(
        current,
        phase::PROGRESSING | phase::WAITING_PROMOTION | phase::PROMOTING | phase::FINALISING
    ) {
        if let Err(hook) = gate(canary, gates, Gate::ConfirmRollout)? {
            if current != phase::WAITING {
                let id = b.id();
                b.status(StatusUpdate::Phase(phase::WAITING))
                    .warn(format!("Halt {id} advancement waiting for approval {hook}"));
            }
            return Ok(b.done());
        }
        let target = b.target();
        b.info(format!("New revision detected! Scaling up {target}"))
            .act(Action::ScaleTargetFromZero)
            .status(StatusUpdate::Sync {
                phase: phase::PROGRESSING,
                canary_weight: 0,
                failed_checks: 0,
                iterations: 0,
            });
        return Ok(b.done());
    }
    if matches!(current, phase::PROGRESSING | phase::WAITING_PROMOTION) && changed {
        let target = b.target();
        b.info(format!(
            "New revision detected! Restarting analysis for {target}"
        ))
        .act(Action::SetRoutes {
            primary: TOTAL_WEIGHT,
            canary: 0,
        })
        .status(StatusUpdate::Sync {
            phase: phase::PROGRESSING,
            canary_weight: 0,
            failed_checks: 0,
            iterations: 0,
        });
        return Ok(b.done());
    }
    match &observed.canary {
        Readiness::Ready => {}
        Readiness::NotReady(message) => {
            b.warn(message.clone());
            return Ok(b.done());
        }
        Readiness::DeadlineExceeded(message) => {
            let id = b.id();
            b.warn(format!(
                "Rolling back {id} progress deadline exceeded {message}"
            ));
            return Ok(b.rollback(failed_checks, analysis.threshold));
        }
    }
    if analysis.skip {
        let target = b.target();
        let primary = format!(
            "{}-primary.{}",
            canary.spec.target_ref.name,
            namespace(canary)
        );
        b.act(Action::SetRoutes {
            primary: TOTAL_WEIGHT,
            canary: 0,
        })
        .info(format!("Copying {target} template spec to {primary}"))
        .act(Action::Promote)
        .act(Action::ScaleTargetToZero)
        .status(StatusUpdate::Phase(phase::SUCCEEDED))
        .act(Action::PostRolloutHooks(phase::SUCCEEDED))
        .info(format!(
            "Promotion completed! Canary analysis was skipped for {target}"
        ));
        return Ok(b.done());
    }
    if matches!(
        current,
        phase::PROGRESSING | phase::WAITING | phase::WAITING_PROMOTION
    ) && gate(canary, gates, Gate::Rollback)?.is_ok()
    {
        let id = b.id();
        b.warn(format!("Rolling back {id} manual webhook invoked"));
        return Ok(b.rollback(failed_checks, analysis.threshold));
    }
    if current == phase::PROMOTING {
        return Ok(promotion_traffic_shift(b, &analysis, observed));
    }
    if current == phase::FINALISING {
        let target = b.target();
        b.act(Action::ScaleTargetToZero)
            .status(StatusUpdate::Phase(phase::SUCCEEDED))
            .act(Action::PostRolloutHooks(phase::SUCCEEDED))
            .info(format!("Promotion completed! Scaling down {target}"));
        return Ok(b.done());
    }
    if matches!(current, phase::PROGRESSING | phase::WAITING_PROMOTION)
        && failed_checks >= analysis.threshold
    {
        return Ok(b.rollback(failed_checks, analysis.threshold));
    }
    let first_step = observed.canary_weight == 0 && iterations == 0;
    if first_step {
        let target = b.target();
        b.info(format!("Starting canary analysis for {target}"));
        if gate(canary, gates, Gate::PreRollout)?.is_err() {
            b.status(StatusUpdate::FailedChecks(failed_checks.saturating_add(1)));
            return Ok(b.done());
        }
    } else if gate(canary, gates, Gate::Analysis)?.is_err() {
        b.status(StatusUpdate::FailedChecks(failed_checks.saturating_add(1)));
        return Ok(b.done());
    }
    if analysis.blue_green() {
        return blue_green(b, canary, &analysis, iterations, gates);
    }
    progressive(b, canary, &analysis, observed, gates, current)
}

/// Flagger's `runPromotionTrafficShift`.
fn promotion_traffic_shift(mut b: Builder<'_>, analysis: &Analysis, observed: &Observed) -> Step {
    if analysis.kubernetes {
        b.status(StatusUpdate::Phase(phase::FINALISING));
        return b.done();
    }
    if analysis.step_weight_promotion <= 0 {
        b.info("Routing all traffic to primary".to_string())
            .act(Action::SetRoutes {
                primary: TOTAL_WEIGHT,
                canary: 0,
            })
            .status(StatusUpdate::Phase(phase::FINALISING));
        return b.done();
    }
    if observed.canary_weight > 0 {
        let primary = observed
            .primary_weight
            .saturating_add(analysis.step_weight_promotion)
            .min(TOTAL_WEIGHT);
        let canary = observed
            .canary_weight
            .saturating_sub(analysis.step_weight_promotion)
            .max(0);
        let id = b.id();
        b.act(Action::SetRoutes { primary, canary })
            .info(format!("Advance {id} primary weight {primary}"));
        if primary == TOTAL_WEIGHT {
            b.status(StatusUpdate::Phase(phase::FINALISING));
        } else {
            b.status(StatusUpdate::Weight(canary));
        }
    }
    b.done()
}

/// Flagger's `runBlueGreen`: the iterations, all traffic to the canary (not for the
/// `kubernetes` provider), then the promotion.
fn blue_green(
    mut b: Builder<'_>,
    canary: &Canary,
    analysis: &Analysis,
    iterations: i32,
    gates: &Gates,
) -> Result<Step, Step> {
    let wanted = analysis.iterations;
    if wanted > iterations {
        let id = b.id();
        let next = iterations.saturating_add(1);
        b.status(StatusUpdate::Iterations(next))
            .info(format!("Advance {id} canary iteration {next}/{wanted}"));
        return Ok(b.done());
    }
    if let Err(hook) = gate(canary, gates, Gate::ConfirmPromotion)? {
        return Ok(waiting_promotion(b, canary, &hook));
    }
    if wanted == iterations {
        if !analysis.kubernetes {
            b.info("Routing all traffic to canary".to_string())
                .act(Action::SetRoutes {
                    primary: 0,
                    canary: TOTAL_WEIGHT,
                });
        }
        b.status(StatusUpdate::Iterations(iterations.saturating_add(1)));
        return Ok(b.done());
    }
    Ok(promote(b, canary))
}

/// Flagger's `runCanary` behind its confirm-traffic-increase gate.
fn progressive(
    mut b: Builder<'_>,
    canary: &Canary,
    analysis: &Analysis,
    observed: &Observed,
    gates: &Gates,
    current: &str,
) -> Result<Step, Step> {
    let step = analysis.next_step_weight(observed.canary_weight);
    if step <= 0 {
        return Ok(b.done());
    }
    if !matches!(
        current,
        phase::PROMOTING | phase::WAITING_PROMOTION | phase::FINALISING
    ) && let Err(hook) = gate(canary, gates, Gate::ConfirmTrafficIncrease)?
    {
        let id = b.id();
        b.warn(format!(
            "Halt {id} advancement waiting for traffic increase approval {hook}"
        ));
        return Ok(b.done());
    }
    if observed.canary_weight < analysis.max_weight() {
        let primary = observed.primary_weight.saturating_sub(step).max(0);
        let weight = observed
            .canary_weight
            .saturating_add(step)
            .min(TOTAL_WEIGHT);
        let id = b.id();
        b.act(Action::SetRoutes {
            primary,
            canary: weight,
        })
        .status(StatusUpdate::Weight(weight))
        .info(format!("Advance {id} canary weight {weight}"));
        return Ok(b.done());
    }
    if let Err(hook) = gate(canary, gates, Gate::ConfirmPromotion)? {
        return Ok(waiting_promotion(b, canary, &hook));
    }
    Ok(promote(b, canary))
}

/// Flagger's held promotion: WaitingPromotion, once announced.
fn waiting_promotion(mut b: Builder<'_>, canary: &Canary, hook: &str) -> Step {
    let current = canary.status.as_ref().and_then(|s| s.phase.as_deref());
    if current != Some(phase::WAITING_PROMOTION) {
        let id = b.id();
        b.status(StatusUpdate::Phase(phase::WAITING_PROMOTION))
            .warn(format!(
                "Halt {id} advancement waiting for promotion approval {hook}"
            ));
    }
    b.done()
}

/// Copies the canary's spec to the primary: Promoting.
fn promote(mut b: Builder<'_>, canary: &Canary) -> Step {
    let target = b.target();
    let primary = format!(
        "{}-primary.{}",
        canary.spec.target_ref.name,
        namespace(canary)
    );
    b.info(format!("Copying {target} template spec to {primary}"))
        .act(Action::Promote)
        .status(StatusUpdate::Phase(phase::PROMOTING));
    b.done()
}

/// Flagger's Promoted condition for `phase`: its status and message.
pub fn promoted_condition(phase: &str, target_kind: &str) -> (&'static str, String) {
    match phase {
        phase::INITIALIZED => ("True", format!("{target_kind} initialization completed.")),
        phase::WAITING | phase::WAITING_PROMOTION => ("Unknown", "Waiting for approval.".into()),
        phase::PROGRESSING => (
            "Unknown",
            "New revision detected, progressing canary analysis.".into(),
        ),
        phase::PROMOTING => (
            "Unknown",
            "Canary analysis completed, starting primary rolling update.".into(),
        ),
        phase::FINALISING => (
            "Unknown",
            "Canary analysis completed, routing all traffic to primary.".into(),
        ),
        phase::SUCCEEDED => (
            "True",
            "Canary analysis completed successfully, promotion finished.".into(),
        ),
        phase::FAILED => (
            "False",
            format!("Canary analysis failed, {target_kind} scaled to zero."),
        ),
        _ => (
            "Unknown",
            format!("New {target_kind} detected, starting initialization."),
        ),
    }
}

/// Sets the Promoted condition for `phase` as Flagger's `MakeStatusConditions` (reason: the
/// phase; the transition time kept while the status stays), with `message` instead of
/// Flagger's when given (ferroflux's refusals).
pub fn set_promoted(
    status: &mut CanaryStatus,
    phase: &str,
    target_kind: &str,
    message: Option<&str>,
    now: &str,
) {
    let (condition_status, default_message) = promoted_condition(phase, target_kind);
    let message = message.map_or(default_message, str::to_string);
    let previous = status
        .conditions
        .as_ref()
        .and_then(|c| c.iter().find(|c| c.condition_type == PROMOTED))
        .cloned();
    if let Some(previous) = &previous
        && previous.status == condition_status
        && previous.reason.as_deref() == Some(phase)
        && previous.message.as_deref() == Some(message.as_str())
    {
        return;
    }
    let transition = previous
        .filter(|p| p.status == condition_status)
        .and_then(|p| p.last_transition_time)
        .unwrap_or_else(|| now.to_string());
    status.conditions = Some(vec![CanaryCondition {
        condition_type: PROMOTED.into(),
        status: condition_status.into(),
        last_update_time: Some(now.into()),
        last_transition_time: Some(transition),
        reason: Some(phase.into()),
        message: Some(message),
    }]);
}

/// The status after `update`, as Flagger's setters write it; `target_hash` is what `Sync`
/// records as the applied spec, `now` the RFC 3339 time of the tick.
pub fn next_status(
    canary: &Canary,
    update: &StatusUpdate,
    target_hash: &str,
    now: &str,
) -> CanaryStatus {
    let mut status = canary.status.clone().unwrap_or_default();
    let kind = canary
        .spec
        .target_ref
        .kind
        .as_deref()
        .unwrap_or("Deployment");
    match update {
        StatusUpdate::None => return status,
        StatusUpdate::Sync {
            phase: p,
            canary_weight,
            failed_checks,
            iterations,
        } => {
            status.phase = Some((*p).into());
            status.canary_weight = Some(*canary_weight);
            status.failed_checks = Some(*failed_checks);
            status.iterations = Some(*iterations);
            status.last_applied_spec = Some(target_hash.into());
            if *p == phase::INITIALIZED {
                status.last_promoted_spec = Some(target_hash.into());
            }
            set_promoted(&mut status, p, kind, None, now);
        }
        StatusUpdate::Phase(p) => {
            status.phase = Some((*p).into());
            if !matches!(*p, phase::PROGRESSING | phase::WAITING | phase::PROMOTING) {
                status.canary_weight = Some(0);
                status.iterations = Some(if *p == phase::WAITING_PROMOTION {
                    Analysis::of(canary).iterations.saturating_sub(1).max(0)
                } else {
                    0
                });
            }
            if matches!(*p, phase::INITIALIZED | phase::SUCCEEDED) {
                status.last_promoted_spec = status.last_applied_spec.clone();
            }
            set_promoted(&mut status, p, kind, None, now);
        }
        StatusUpdate::FailedChecks(n) => status.failed_checks = Some(*n),
        StatusUpdate::Weight(n) => status.canary_weight = Some(*n),
        StatusUpdate::Iterations(n) => status.iterations = Some(*n),
    }
    status.last_transition_time = Some(now.into());
    status
}

/// A stable hash of a workload's pod template (plus the checksums of tracked configs, when
/// any): the SHA-256 of its canonical JSON (keys sorted, as serde_json's map writes them) in
/// lowercase base32 without padding, cut to 16 characters. Flagger hashes Go's printed
/// object with FNV; the value differs, the use is the same: a change of the template changes it.
pub fn spec_hash(template: &serde_json::Value) -> String {
    use sha2::Digest as _;
    let canonical = serde_json::to_vec(template).unwrap_or_default();
    let digest = sha2::Sha256::digest(&canonical);
    let mut text = data_encoding::BASE32_NOPAD
        .encode(&digest)
        .to_ascii_lowercase();
    text.truncate(16);
    text
}

#[cfg(test)]
mod tests;
