"""Validates the custom resources of deploy/kubernetes against their CRD types, strictly: wrong
types fail, and so does any field the CRD does not have. The types are generated from the CRDs
(PyPI: cloudcoil.models.keda, cloudcoil.models.prometheus_operator):

    python crd_objects.py FILE...

kubernetes-validate knows only Kubernetes' own kinds; this covers keda.sh/v1alpha1 ScaledObject and
monitoring.coreos.com/v1 PrometheusRule and PodMonitor. Other kinds in the files are skipped.
Exit status 1 when any object is invalid.
"""

import sys

import yaml
from cloudcoil.models.keda.v1alpha1 import ScaledObject
from cloudcoil.models.prometheus_operator.v1 import PodMonitor, PrometheusRule
from pydantic import ValidationError

# kind -> (apiVersion, model, who defines it)
KINDS = {
    "ScaledObject": ("keda.sh/v1alpha1", ScaledObject, "KEDA"),
    "PrometheusRule": ("monitoring.coreos.com/v1", PrometheusRule, "the Prometheus operator"),
    "PodMonitor": ("monitoring.coreos.com/v1", PodMonitor, "the Prometheus operator"),
}


def unknown_fields(given, kept, path=""):
    """Keys present in the input but dropped by the model (pydantic ignores unknown fields)."""
    if isinstance(given, dict) and isinstance(kept, dict):
        for key, value in given.items():
            if key not in kept:
                yield f"{path}.{key}" if path else key
            else:
                yield from unknown_fields(value, kept[key], f"{path}.{key}" if path else key)
    elif isinstance(given, list) and isinstance(kept, list):
        for i, (g, k) in enumerate(zip(given, kept)):
            yield from unknown_fields(g, k, f"{path}[{i}]")


def main(files):
    failed = False
    for name in files:
        with open(name, encoding="utf-8") as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
        for doc in docs:
            if doc.get("kind") not in KINDS:
                continue
            api_version, model, owner = KINDS[doc["kind"]]
            label = f"{name}: {doc['kind']}/{doc.get('metadata', {}).get('name', '?')}"
            if doc.get("apiVersion") != api_version:
                print(f"ERROR {label}: apiVersion must be {api_version}")
                failed = True
                continue
            try:
                obj = model.model_validate(doc)
            except ValidationError as err:
                print(f"ERROR {label}: {err}")
                failed = True
                continue
            kept = obj.model_dump(by_alias=True, exclude_unset=True, mode="json")
            extra = list(unknown_fields(doc, kept))
            if extra:
                print(f"ERROR {label}: fields {owner} does not know: {', '.join(extra)}")
                failed = True
                continue
            print(f"INFO {label} is valid")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
