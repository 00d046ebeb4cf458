"""The deployment files as data: k8s/ rendered as kustomize would, and the monitoring
generator (k8s/monitoring/generate.py, a script, not a package) loaded once."""

from __future__ import annotations

import copy
import functools
import runpy
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
MONITORING = K8S / "monitoring"
NAMESPACE = "bin-manager"
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PriorityClass"}

Obj = dict[str, Any]


def load_docs(path: Path) -> list[Obj]:
    with path.open(encoding="utf-8") as fh:
        return [doc for doc in yaml.safe_load_all(fh) if doc is not None]


def kustomize_build(directory: Path) -> list[Obj]:
    """What ``kustomize build`` renders for the features k8s/ uses: ``resources`` (files)
    and ``namespace``. Any other kustomization key is refused, so this stays honest."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text("utf-8"))
    supported = {"apiVersion", "kind", "namespace", "resources"}
    unsupported = set(kustomization) - supported
    if unsupported:
        raise ValueError(f"kustomize_build does not implement {sorted(unsupported)}")
    if kustomization.get("kind") != "Kustomization":
        raise ValueError("kustomization.yaml is not kind: Kustomization")
    namespace = kustomization.get("namespace")
    out: list[Obj] = []
    for resource in kustomization["resources"]:
        path = directory / resource
        if not path.is_file():
            raise FileNotFoundError(f"kustomization resource {resource} does not exist")
        for doc in load_docs(path):
            doc = copy.deepcopy(doc)
            if namespace and doc["kind"] not in CLUSTER_SCOPED:
                doc["metadata"]["namespace"] = namespace
            out.append(doc)
    return out


def by_kind(objs: list[Obj]) -> dict[str, Obj]:
    kinds = [o["kind"] for o in objs]
    assert len(kinds) == len(set(kinds)), f"one object per kind expected, got {kinds}"
    return {o["kind"]: o for o in objs}


@functools.cache
def monitoring_generator() -> SimpleNamespace:
    """The names defined by k8s/monitoring/generate.py (run once, not as ``__main__``)."""
    return SimpleNamespace(**runpy.run_path(str(MONITORING / "generate.py")))
