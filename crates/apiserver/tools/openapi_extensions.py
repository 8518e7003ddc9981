#!/usr/bin/env python3
"""Extracts the x-kubernetes-* extensions of kube-apiserver's OpenAPI v3 documents for the
built-in groups ferroflux serves, into src/openapi_extensions.json.

k8s-openapi's schemars schemas (which ferroflux serves for built-in kinds) carry the
descriptions and types but not these extensions (list types, list-map keys, patch merge keys,
map types), which kubectl and server-side apply need, nor the defaults of list-map key fields
(server-side apply keys items by them). Usage:

    python3 crates/apiserver/tools/openapi_extensions.py \
        "$(go env GOMODCACHE)/k8s.io/kubernetes@v1.36.3/api/openapi-spec/v3"

Output: {definition: {"": schema-level extensions, property: property extensions}}, keys
sorted, so a regeneration diffs cleanly.
"""
import glob
import json
import os
import sys

# The group versions the embedded server serves (registry.rs BUILTIN), as spec file names.
SERVED = [
    "api__v1", "apis__apps__v1", "apis__batch__v1", "apis__networking.k8s.io__v1",
    "apis__policy__v1", "apis__rbac.authorization.k8s.io__v1", "apis__autoscaling__v2",
    "apis__discovery.k8s.io__v1", "apis__events.k8s.io__v1", "apis__node.k8s.io__v1",
    "apis__coordination.k8s.io__v1", "apis__scheduling.k8s.io__v1", "apis__storage.k8s.io__v1",
    "apis__admissionregistration.k8s.io__v1", "apis__apiregistration.k8s.io__v1",
    "apis__apiextensions.k8s.io__v1", "apis__authorization.k8s.io__v1",
    "apis__authentication.k8s.io__v1",
]
SKIP = {"x-kubernetes-group-version-kind", "x-kubernetes-action"}


def ext(schema):
    return {k: v for k, v in schema.items() if k.startswith("x-kubernetes-") and k not in SKIP}


def ref_name(schema):
    """The definition a property or items schema names, directly or in a single allOf."""
    ref = schema.get("$ref") or ((schema.get("allOf") or [{}])[0]).get("$ref", "")
    return ref.rsplit("/", 1)[-1] or None


def key_fields(schemas):
    """(definition, property) of every list-map key field: server-side apply keys an item
    that omits one by the field's default (ports without a protocol are TCP ports)."""
    keys = set()
    for s in schemas.values():
        for ps in (s.get("properties") or {}).values():
            item = ref_name(ps.get("items") or {})
            if ps.get("x-kubernetes-list-type") == "map" and item:
                keys.update((item, k) for k in ps.get("x-kubernetes-list-map-keys", []))
    return keys


def main():
    spec_dir = sys.argv[1]
    out = {}
    for name in SERVED:
        with open(os.path.join(spec_dir, f"{name}_openapi.json")) as f:
            doc = json.load(f)
        schemas = doc.get("components", {}).get("schemas", {})
        keys = key_fields(schemas)
        for d, s in schemas.items():
            entry = {}
            if ext(s):
                entry[""] = ext(s)
            for p, ps in (s.get("properties") or {}).items():
                e = ext(ps)
                if (d, p) in keys and "default" in ps:
                    e["default"] = ps["default"]
                if e:
                    entry[p] = e
            if entry:
                out.setdefault(d, {}).update(entry)
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "src", "openapi_extensions.json"), "w") as f:
        json.dump(out, f, sort_keys=True, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
