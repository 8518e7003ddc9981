//! The admission verdict and its texts (`pkg/webhooks/utils/block.go`, `warning.go`).

use std::borrow::Cow;
use std::collections::BTreeMap;

use ferroflux_gocompat::yaml::emit::{self, Flavor, Node};
use serde_json::Value;

use crate::{PolicySet, Request, RuleResponse, RuleStatus};

/// What admission answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    /// The request may proceed.
    pub allowed: bool,
    /// Kyverno's block message when refused; empty when allowed.
    pub message: String,
    /// `policy <policy>.<rule>: <message>` for each audited violation.
    pub warnings: Vec<String>,
    /// Every rule response.
    pub results: Vec<RuleResponse>,
}

fn violated(status: RuleStatus) -> bool {
    matches!(
        status,
        RuleStatus::Fail | RuleStatus::Warn | RuleStatus::Error
    )
}

pub(crate) fn admit(set: &PolicySet, request: &Request) -> Admission {
    let results = set.evaluate(request);
    let ignores_errors = |policy: &str| {
        set.policies
            .iter()
            .any(|p| p.name == policy && p.ignore_errors)
    };
    let blocks = |r: &RuleResponse| {
        r.enforce
            && match r.status {
                RuleStatus::Fail | RuleStatus::Warn => true,
                RuleStatus::Error => !ignores_errors(&r.policy),
                _ => false,
            }
    };
    let blocking: Vec<&RuleResponse> = results.iter().filter(|r| blocks(r)).collect();
    let warnings = results
        .iter()
        .filter(|r| !r.enforce && violated(r.status))
        .map(|r| format!("policy {}.{}: {}", r.policy, r.rule, r.message))
        .collect();
    let message = if blocking.is_empty() {
        String::new()
    } else {
        block_message(request, &blocking)
    };
    Admission {
        allowed: blocking.is_empty(),
        message,
        warnings,
        results,
    }
}

/// `GetBlockedMessages`: the resource, then a YAML map of policy → rule → message.
fn block_message(request: &Request, blocking: &[&RuleResponse]) -> String {
    let resource = if request.object.is_null() {
        &request.old_object
    } else {
        &request.object
    };
    let field = |pointer: &str| {
        resource
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let mut failures: BTreeMap<&str, BTreeMap<&str, &str>> = BTreeMap::new();
    for r in blocking {
        failures
            .entry(&r.policy)
            .or_default()
            .insert(&r.rule, &r.message);
    }
    let node = Node::Map(
        failures
            .into_iter()
            .map(|(policy, rules)| {
                let rules = rules
                    .into_iter()
                    .map(|(rule, message)| (Cow::Borrowed(rule), Node::Str(Cow::Borrowed(message))))
                    .collect();
                (Cow::Borrowed(policy), Node::Map(rules))
            })
            .collect(),
    );
    format!(
        "\n\nresource {}/{}/{} was blocked due to the following policies \n\n{}",
        field("/kind"),
        field("/metadata/namespace"),
        field("/metadata/name"),
        emit::to_string(&node, Flavor::V3)
    )
}
