"""Lists the validation keywords that differ between upstream's CRD schemas and ours.

Usage: schema_keywords.py UPSTREAM_DIR OURS.yaml GROUP_SUFFIX

For every kind/version served upstream in an API group ending in GROUP_SUFFIX that ours also
serves, walks the schema nodes both sides have and prints one sorted line per keyword whose
value differs:  `group/version Kind .path keyword: upstream X, ours Y`.
compare.py covers fields, types and enum values; this covers how values are constrained.
"""
import glob, json, os, sys
import yaml

KEYWORDS = ("pattern", "required", "default", "minimum", "maximum", "exclusiveMinimum",
            "exclusiveMaximum", "multipleOf", "maxLength", "minLength", "maxItems", "minItems",
            "uniqueItems", "maxProperties", "minProperties", "format", "enum", "nullable",
            "x-kubernetes-validations", "x-kubernetes-list-type", "x-kubernetes-list-map-keys",
            "x-kubernetes-map-type", "x-kubernetes-preserve-unknown-fields",
            "x-kubernetes-embedded-resource")
OWN = (".apiVersion", ".kind", ".metadata")


def walk(schema, path, out):
    if not isinstance(schema, dict):
        return
    out[path or "."] = schema
    for name, sub in (schema.get("properties") or {}).items():
        walk(sub, f"{path}.{name}", out)
    if isinstance(schema.get("items"), dict):
        walk(schema["items"], f"{path}[]", out)
    if isinstance(schema.get("additionalProperties"), dict):
        walk(schema["additionalProperties"], f"{path}{{}}", out)


def load(files, suffix):
    crds = {}
    for f in files:
        with open(f) as fh:
            for d in yaml.safe_load_all(fh):
                if not d or d.get("kind") != "CustomResourceDefinition":
                    continue
                group = d["spec"]["group"]
                if not group.endswith(suffix):
                    continue
                for v in d["spec"].get("versions", []):
                    if v.get("served", True):
                        nodes = {}
                        walk((v.get("schema") or {}).get("openAPIV3Schema") or {}, "", nodes)
                        crds[(group, d["spec"]["names"]["kind"], v["name"])] = nodes
    return crds


def value(node, keyword):
    v = node.get(keyword)
    # Order in these lists does not change what is accepted.
    if keyword in ("required", "enum") and v is not None:
        return sorted(v, key=json.dumps)
    if keyword == "x-kubernetes-validations" and v is not None:
        return sorted(v, key=lambda rule: json.dumps(rule, sort_keys=True))
    # 5 and 5.0 are the same bound.
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def main():
    upstream_dir, ours_file, suffix = sys.argv[1:4]
    upstream = load(sorted(glob.glob(os.path.join(upstream_dir, "*.yaml"))), suffix)
    ours = load([ours_file], suffix)
    lines = []
    for key, up in upstream.items():
        mine = ours.get(key)
        if mine is None:
            continue
        group, kind, version = key
        for path, node in up.items():
            if path.startswith(OWN) or path not in mine:
                continue
            for keyword in KEYWORDS:
                a, b = value(node, keyword), value(mine[path], keyword)
                if a != b:
                    lines.append(f"{group}/{version} {kind} {path} {keyword}: "
                                 f"upstream {json.dumps(a, sort_keys=True)}, "
                                 f"ours {json.dumps(b, sort_keys=True)}")
    for line in sorted(lines):
        print(line)


if __name__ == "__main__":
    main()
