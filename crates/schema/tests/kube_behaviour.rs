//! The behaviour of kube-apiserver 1.36 on custom resources, as observed on the real server
//! with this CRD (the expected texts are its answers): pruning, defaulting, list types and CEL
//! rules with their messages, reasons, field paths and transition rules.

use ferroflux_schema::{Admission, admit, compile_errors};
use serde_json::{Value, json};

fn schema() -> Value {
    serde_json::from_str(SCHEMA).expect("the test's schema is JSON")
}

/// `field: message` lines, as kube-apiserver lists them in its Invalid status.
fn lines(a: &Admission) -> Vec<String> {
    a.causes
        .iter()
        .map(|c| format!("{}: {}", c.field, c.message))
        .collect()
}

#[test]
fn failing_rules_are_reported_with_kube_paths_reasons_and_messages() {
    let mut obj = json!({"apiVersion": "h2.example.com/v1", "kind": "Widget",
        "metadata": {"name": "xbad", "namespace": "default"},
        "spec": {"a": "bad", "num": 12, "b": "forbidden", "c": "x", "dash-name": "ab",
            "items": [{"name": "no", "sub": {}}, {"name": "ok"}], "m": {"p": -1, "q": 2}}});
    let a = admit(&mut obj, &schema(), None);
    let mut got = lines(&a);
    got.sort();
    let mut want = vec![
        "<nil>: Invalid value: name must start with w",
        "spec: Invalid value: a must not be bad",
        "spec: Invalid value: failed rule: self.num < 10",
        "spec.b: Forbidden: b forbidden",
        "spec: Invalid value: c was x",
        "spec.items[0]: Invalid value: item name no",
        "spec.dash-name: Invalid value: \"ab\": too short",
        "spec.m[p]: Invalid value: -1: non-negative",
    ];
    want.sort();
    assert_eq!(got, want);
    let forbidden = a
        .causes
        .iter()
        .find(|c| c.field == "spec.b")
        .expect("spec.b");
    assert_eq!(forbidden.reason, "FieldValueForbidden");
}

#[test]
fn defaults_fill_existing_objects_items_and_non_nullable_nulls_only() {
    let mut obj = json!({"apiVersion": "h2.example.com/v1", "kind": "Widget",
        "metadata": {"name": "wgood"},
        "spec": {"items": [{"name": "a", "sub": {}}, {"name": "ok"}], "m": {"p": 1},
            "emb": {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "e", "junk": 1, "labels": {"a": "b"}}, "data": {"x": "yy"}},
            "nul": null, "nn": null, "ios": 3, "set": ["a", "b"],
            "lm": [{"name": "x", "v": 1}, {"name": "z", "v": 2}]}});
    let a = admit(&mut obj, &schema(), None);
    assert_eq!(a.causes, vec![]);
    assert_eq!(a.unknown_fields, vec!["spec.emb.metadata.junk"]);
    assert_eq!(
        obj["spec"],
        json!({"a": "dflt", "emb": {"apiVersion": "v1", "data": {"x": "yy"}, "kind": "ConfigMap",
            "metadata": {"labels": {"a": "b"}, "name": "e"}}, "ios": 3,
            "items": [{"name": "a", "sub": {"deep": "d"}}, {"name": "ok"}],
            "lm": [{"name": "x", "v": 1}, {"name": "z", "v": 2}], "m": {"p": 1}, "nn": "nnd",
            "nul": null, "num": 1, "set": ["a", "b"]})
    );
}

#[test]
fn duplicates_in_set_and_map_lists_are_refused() {
    let mut obj = json!({"metadata": {"name": "wgood"},
        "spec": {"set": ["a", "a", "a"], "lm": [{"name": "x", "v": 1}, {"name": "x", "v": 2}]}});
    let a = admit(&mut obj, &schema(), None);
    assert_eq!(
        lines(&a),
        vec![
            "spec.lm[1]: Duplicate value: {\"name\":\"x\"}",
            "spec.set[1]: Duplicate value: \"a\"",
        ]
    );
}

#[test]
fn embedded_resources_need_api_version_and_kind() {
    let mut obj = json!({"metadata": {"name": "wgood"},
        "spec": {"emb": {"kind": "", "metadata": {"name": "e"}}}});
    let a = admit(&mut obj, &schema(), None);
    assert_eq!(
        lines(&a)[..2],
        [
            "spec.emb.apiVersion: Required value",
            "spec.emb.kind: Invalid value: \"\": must not be empty",
        ]
    );
}

#[test]
fn schema_faults_leave_rules_unchecked_as_kube_says() {
    let mut obj = json!({"metadata": {"name": "xbad"}, "spec": {"lm": [{"name": true}]}});
    let a = admit(&mut obj, &schema(), None);
    assert_eq!(
        lines(&a).last().map(String::as_str),
        Some(
            "<nil>: Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation"
        )
    );
}

#[test]
fn transition_rules_run_only_against_a_stored_value() {
    let old = json!({"metadata": {"name": "wgood"}, "spec": {"a": "dflt", "num": 1}});
    let mut new = json!({"metadata": {"name": "wgood"}, "spec": {"a": "changed"}});
    let a = admit(&mut new, &schema(), Some(&old));
    assert_eq!(lines(&a), vec!["spec: Invalid value: a is immutable"]);
    let mut created = json!({"metadata": {"name": "wgood"}, "spec": {"a": "changed"}});
    assert_eq!(admit(&mut created, &schema(), None).causes, vec![]);
}

#[test]
fn an_update_that_leaves_a_failing_value_alone_is_not_refused_by_it() {
    // Stored before the rule existed (or tightened): kube ratchets, the update goes through.
    let old = json!({"metadata": {"name": "wgood"}, "spec": {"a": "dflt", "num": 1,
        "dash-name": "ab"}});
    let mut new = json!({"metadata": {"name": "wgood"}, "spec": {"a": "dflt", "num": 2,
        "dash-name": "ab"}});
    assert_eq!(admit(&mut new, &schema(), Some(&old)).causes, vec![]);
    let mut changed = json!({"metadata": {"name": "wgood"}, "spec": {"a": "dflt", "num": 2,
        "dash-name": "cd"}});
    assert_eq!(
        lines(&admit(&mut changed, &schema(), Some(&old))),
        vec!["spec.dash-name: Invalid value: \"cd\": too short"]
    );
}

#[test]
fn rules_naming_undeclared_fields_or_not_parsing_are_refused_in_kube_words() {
    let s = json!({"type": "object", "properties": {"spec": {"type": "object",
        "properties": {"num": {"type": "integer"}},
        "x-kubernetes-validations": [
            {"rule": "self.num < 10"},
            {"rule": "self.missing == 1 || true"},
            {"rule": "self.num ==", "message": "m"}]}}});
    let causes = compile_errors(&s);
    let got: Vec<String> = causes
        .iter()
        .map(|c| format!("{}: {}", c.field, c.message))
        .collect();
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(
        got[0],
        "properties[spec].x-kubernetes-validations[1].rule: Invalid value: {\"Rule\":\"self.missing == 1 || true\",\"Message\":\"\",\"MessageExpression\":\"\",\"Reason\":null,\"FieldPath\":\"\",\"OptionalOldSelf\":null}: compilation failed: ERROR: <input>:1:5: undefined field 'missing'\n | self.missing == 1 || true\n | ....^"
    );
    assert!(
        got[1].starts_with("properties[spec].x-kubernetes-validations[2].rule: Invalid value: {\"Rule\":\"self.num ==\",\"Message\":\"m\"")
            && got[1].contains("compilation failed: ERROR: <input>:1:"),
        "{}",
        got[1]
    );
    assert!(compile_errors(&schema()).is_empty());
}

#[test]
fn a_rule_too_costly_for_the_budget_stops_evaluation() {
    let s = json!({"type": "object", "properties": {"spec": {"type": "object",
        "properties": {"l": {"type": "array", "items": {"type": "integer"}}},
        "x-kubernetes-validations": [
            {"rule": "self.l.all(x, self.l.all(y, self.l.all(z, x + y + z >= 0)))"}]}}});
    let mut obj = json!({"spec": {"l": (0..1000).collect::<Vec<i64>>()}});
    let a = admit(&mut obj, &s, None);
    assert_eq!(
        lines(&a),
        vec![
            "spec: Invalid value: \"object\": validation failed due to running out of cost budget, no further validation rules will be run"
        ]
    );
}

const SCHEMA: &str = r#"{
 "type": "object",
 "x-kubernetes-validations": [
  {
   "rule": "self.metadata.name.startsWith('w')",
   "message": "name must start with w"
  }
 ],
 "properties": {
  "spec": {
   "type": "object",
   "x-kubernetes-validations": [
    {
     "rule": "!has(self.a) || self.a != 'bad'",
     "message": "a must not be bad"
    },
    {
     "rule": "self.num < 10"
    },
    {
     "rule": "self.a == oldSelf.a",
     "message": "a is immutable"
    },
    {
     "rule": "!has(self.b) || self.b != 'forbidden'",
     "reason": "FieldValueForbidden",
     "fieldPath": ".b",
     "message": "b forbidden"
    },
    {
     "rule": "!has(self.c) || self.c != 'x'",
     "messageExpression": "'c was ' + self.c"
    },
    {
     "rule": "true"
    }
   ],
   "properties": {
    "a": {
     "type": "string",
     "default": "dflt"
    },
    "b": {
     "type": "string"
    },
    "c": {
     "type": "string"
    },
    "num": {
     "type": "integer",
     "default": 1
    },
    "dash-name": {
     "type": "string",
     "x-kubernetes-validations": [
      {
       "rule": "self.size() > 2",
       "message": "too short"
      }
     ]
    },
    "items": {
     "type": "array",
     "items": {
      "type": "object",
      "x-kubernetes-validations": [
       {
        "rule": "self.name != 'no'",
        "message": "item name no"
       }
      ],
      "properties": {
       "name": {
        "type": "string"
       },
       "sub": {
        "type": "object",
        "properties": {
         "deep": {
          "type": "string",
          "default": "d"
         }
        }
       }
      }
     }
    },
    "m": {
     "type": "object",
     "additionalProperties": {
      "type": "integer",
      "x-kubernetes-validations": [
       {
        "rule": "self >= 0",
        "message": "non-negative"
       }
      ]
     }
    },
    "emb": {
     "type": "object",
     "x-kubernetes-embedded-resource": true,
     "x-kubernetes-preserve-unknown-fields": true
    },
    "ios": {
     "x-kubernetes-int-or-string": true
    },
    "nul": {
     "type": "string",
     "nullable": true,
     "default": "nd"
    },
    "nn": {
     "type": "string",
     "default": "nnd"
    },
    "missingparent": {
     "type": "object",
     "properties": {
      "x": {
       "type": "string",
       "default": "yy"
      }
     }
    },
    "set": {
     "type": "array",
     "x-kubernetes-list-type": "set",
     "items": {
      "type": "string"
     }
    },
    "lm": {
     "type": "array",
     "x-kubernetes-list-type": "map",
     "x-kubernetes-list-map-keys": [
      "name"
     ],
     "items": {
      "type": "object",
      "required": [
       "name"
      ],
      "properties": {
       "name": {
        "type": "string"
       },
       "v": {
        "type": "integer"
       }
      }
     }
    }
   }
  }
 }
}"#;
