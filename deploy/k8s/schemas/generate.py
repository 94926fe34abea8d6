#!/usr/bin/env python3
"""Offline JSON Schemas for kubeconform (`make setup` runs this; tests/it/scale/k8s.rs uses them).

    generate.py <kubernetes swagger.json> <keda scaledobjects CRD yaml> <out dir>

Sources, both fetched through the Go module proxy by the Makefile (pinned there):
- Kubernetes' OpenAPI v2 document, `api/openapi-spec/swagger.json` of the `k8s.io/kubernetes`
  module: one standalone schema per kind deploy/k8s uses, named as kubeconform's
  `{{ .ResourceKind }}{{ .KindSuffix }}.json` (e.g. `deployment-apps-v1.json`);
- KEDA's ScaledObject CRD, `config/crd/bases/keda.sh_scaledobjects.yaml` of the
  `github.com/kedacore/keda/v2` module: its openAPIV3Schema, as kubeconform's
  openapi2jsonschema.py converts CRDs (`scaledobject-keda-v1alpha1.json`).

Strict, as kubeconform's `-strict` expects of its schemas: every object with `properties`
gets `additionalProperties: false` (kubectl's rule), and `int-or-string` becomes a oneOf.
Needs PyYAML (in .tools/venv).
"""

import json
import os
import sys

import yaml

# (definition in swagger.json, file name)
KINDS = [
    ("io.k8s.api.apps.v1.Deployment", "deployment-apps-v1.json"),
    ("io.k8s.api.core.v1.Service", "service-v1.json"),
    ("io.k8s.api.core.v1.ConfigMap", "configmap-v1.json"),
    ("io.k8s.api.core.v1.Secret", "secret-v1.json"),
    ("io.k8s.api.core.v1.Namespace", "namespace-v1.json"),
    ("io.k8s.api.policy.v1.PodDisruptionBudget", "poddisruptionbudget-policy-v1.json"),
]


def strict(node):
    if isinstance(node, dict):
        if node.get("format") == "int-or-string":
            return {"oneOf": [{"type": "string"}, {"type": "integer"}]}
        out = {k: strict(v) for k, v in node.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [strict(v) for v in node]
    return node


def inline(node, definitions, seen=()):
    """Resolve every #/definitions/ $ref in place (standalone schemas; recursion cut)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if ref and ref.startswith("#/definitions/"):
            name = ref[len("#/definitions/"):]
            if name in seen:
                return {}
            # JSONSchemaProps and the like recurse; kubeconform's schemas cut them the same way.
            return inline(definitions[name], definitions, seen + (name,))
        return {k: inline(v, definitions, seen) for k, v in node.items()}
    if isinstance(node, list):
        return [inline(v, definitions, seen) for v in node]
    return node


def main(swagger_path, crd_path, out):
    os.makedirs(out, exist_ok=True)
    with open(swagger_path) as f:
        definitions = json.load(f)["definitions"]
    for name, file in KINDS:
        schema = strict(inline(definitions[name], definitions))
        schema["$schema"] = "http://json-schema.org/schema#"
        with open(os.path.join(out, file), "w") as f:
            json.dump(schema, f)
    with open(crd_path) as f:
        crd = yaml.safe_load(f)
    group = crd["spec"]["group"].split(".")[0]
    kind = crd["spec"]["names"]["kind"].lower()
    for version in crd["spec"]["versions"]:
        schema = strict(version["schema"]["openAPIV3Schema"])
        # Kubernetes fills these on every object; the CRD leaves metadata open.
        schema["properties"]["metadata"] = {"type": "object"}
        with open(os.path.join(out, f"{kind}-{group}-{version['name']}.json"), "w") as f:
            json.dump(schema, f)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
