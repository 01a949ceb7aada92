"""Validates KEDA ScaledObjects against KEDA's CRD types (PyPI: cloudcoil.models.keda, generated
from KEDA's CRDs), strictly: wrong types fail, and so does any field the CRD does not have.

    python keda_scaledobjects.py FILE...

kubernetes-validate knows only Kubernetes' own kinds; this covers keda.sh/v1alpha1 ScaledObject.
Other kinds in the files are skipped. Exit status 1 on the first file with an invalid object.
"""

import sys

import yaml
from cloudcoil.models.keda.v1alpha1 import ScaledObject
from pydantic import ValidationError


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
            if doc.get("kind") != "ScaledObject":
                continue
            label = f"{name}: ScaledObject/{doc.get('metadata', {}).get('name', '?')}"
            if doc.get("apiVersion") != "keda.sh/v1alpha1":
                print(f"ERROR {label}: apiVersion must be keda.sh/v1alpha1")
                failed = True
                continue
            try:
                obj = ScaledObject.model_validate(doc)
            except ValidationError as err:
                print(f"ERROR {label}: {err}")
                failed = True
                continue
            kept = obj.model_dump(by_alias=True, exclude_unset=True, mode="json")
            extra = list(unknown_fields(doc, kept))
            if extra:
                print(f"ERROR {label}: fields KEDA does not know: {', '.join(extra)}")
                failed = True
                continue
            print(f"INFO {label} is valid")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
