"""deploy/k8s, checked offline: every overlay renders with `kubectl kustomize`; the built-in
objects pass `kubernetes-validate --strict`; KEDA's objects pass KEDA's own CRD schemas
made strict; the operators' objects (RabbitmqCluster, PerconaServerMongoDB), whose schemas
are not available offline, are only named (docs/operations.md)."""

from __future__ import annotations

from pathlib import Path

import gridwork_common.green  # noqa: F401  (nameko's containers below expect eventlet)

# isort: split

import kubernetes_validate
import pytest
import yaml
from jsonschema import Draft7Validator
from nameko.containers import ServiceContainer
from nameko.events import BROADCAST, EventHandler
from nameko.rpc import RPC_QUEUE_TEMPLATE, Rpc

from gridwork_common.config import Settings
from services.assessment.service import AssessmentService
from services.events.service import EventsService
from services.media.service import MediaApiService, MediaDescriberService
from services.population.service import PopulationService
from tests.kubernetes import (
    GRIDWORK_DEPLOYMENTS,
    K8S,
    NAMEKO_SERVICES,
    OVERLAYS,
    RABBITMQ_TRIGGER_KEYS,
    config_map,
    keda_schemas_dir,
    objects_of,
    render,
    scaler_queue_names,
)

KUBERNETES_VERSION = kubernetes_validate.latest_version()
KEDA_KINDS = {"ScaledObject": "keda.sh_scaledobjects.yaml"}
KEDA_KINDS["TriggerAuthentication"] = "keda.sh_triggerauthentications.yaml"
# Operators' resources: named, pinned and documented, but no schema to check them offline.
UNVALIDATED_KINDS = {"RabbitmqCluster", "PerconaServerMongoDB"}
# Each Deployment's process: the media service's two roles apart.
SERVICE_CLASSES = {
    "population": PopulationService,
    "events": EventsService,
    "media": MediaApiService,
    "media-describer": MediaDescriberService,
    "assessment": AssessmentService,
}

renders = pytest.mark.parametrize("directory", [K8S / "base", *OVERLAYS], ids=lambda p: p.name)
overlays = pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)


@renders
def test_kustomize_renders(directory):
    kinds = {doc["kind"] for doc in render(directory)}
    assert {"Deployment", "ScaledObject", "Ingress", "RabbitmqCluster"} <= kinds


def _validation(documents) -> tuple[list[str], set[str]]:
    """`kubernetes-validate --strict` of every object but KEDA's: the errors, and the kinds
    it has no schema for."""
    errors, unknown = [], set()
    for doc in documents:
        if doc["kind"] in KEDA_KINDS:
            continue
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            unknown.add(doc["kind"])
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message}")
    return errors, unknown


_validated: dict[Path, tuple[list[str], set[str]]] = {}


def _validated_overlay(overlay: Path) -> tuple[list[str], set[str]]:
    if overlay not in _validated:
        _validated[overlay] = _validation(render(overlay))
    return _validated[overlay]


@overlays
def test_builtin_objects_pass_kubernetes_validate_strict(overlay):
    errors, _ = _validated_overlay(overlay)
    assert errors == []


@overlays
def test_only_the_operators_objects_go_unvalidated(overlay):
    _, unknown = _validated_overlay(overlay)
    assert unknown == UNVALIDATED_KINDS


def test_kubernetes_validate_would_catch_a_misspelt_field():
    deployment = objects_of(render(OVERLAYS[0]), "Deployment")["events"]
    deployment["spec"]["template"]["spec"]["terminationGracePeriod"] = 60
    errors, _ = _validation([deployment])
    assert any("terminationGracePeriod" in e for e in errors)


def _strict(schema):
    """KEDA's schemas list properties without forbidding others (their README): forbid
    them wherever properties are listed, so a misspelt field fails."""
    if isinstance(schema, dict):
        if "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        for value in schema.values():
            _strict(value)
    elif isinstance(schema, list):
        for value in schema:
            _strict(value)
    return schema


@pytest.fixture(scope="module")
def keda_validators() -> dict[str, Draft7Validator]:
    validators = {}
    for kind, filename in KEDA_KINDS.items():
        crd = yaml.safe_load((keda_schemas_dir() / filename).read_text())
        (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
        validators[kind] = Draft7Validator(_strict(version["schema"]["openAPIV3Schema"]))
    return validators


def _keda_errors(documents, validators) -> list[str]:
    errors = []
    for doc in documents:
        if doc["kind"] in validators:
            name = f"{doc['kind']}/{doc['metadata']['name']}"
            errors += [
                f"{name} {list(e.absolute_path)}: {e.message}"
                for e in validators[doc["kind"]].iter_errors(doc)
            ]
        triggers = doc["spec"]["triggers"] if doc["kind"] == "ScaledObject" else []
        for trigger in triggers:
            unknown = set(trigger["metadata"]) - RABBITMQ_TRIGGER_KEYS
            if trigger["type"] != "rabbitmq" or unknown:
                errors.append(f"{doc['metadata']['name']}: {trigger['type']} {sorted(unknown)}")
    return errors


@overlays
def test_keda_objects_pass_kedas_crd_schemas(overlay, keda_validators):
    documents = render(overlay)
    assert set(objects_of(documents, "ScaledObject")) == set(NAMEKO_SERVICES)
    assert set(objects_of(documents, "TriggerAuthentication")) == {"gridwork-rabbitmq"}
    assert _keda_errors(documents, keda_validators) == []


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "minReplicas"), 2),  # an HPA field, not a ScaledObject's
        (("spec", "triggers", 0, "metadata", "queueLenght"), "10"),
        (("spec", "triggers", 0, "metadata", "value"), 10),  # metadata values are strings
    ],
)
def test_keda_validation_would_catch_a_wrong_field(keda_validators, path, value):
    scaled = objects_of(render(OVERLAYS[0]), "ScaledObject")["events"]
    target = scaled
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert _keda_errors([scaled], keda_validators)


def _queues_nameko_declares(service_cls) -> list[str]:
    """Asked of nameko itself: its RPC queue (if it answers RPC) and the queue each event
    handler declares.
    A broadcast handler's queue belongs to one replica (named per instance, deleted with
    it), so it is no work to scale on and no scaler names it."""
    config = Settings.from_env({"GRIDWORK_DEV_MODE": "true"}).nameko_config()
    container = ServiceContainer(service_cls, config)
    handlers = [
        ep
        for ep in container.entrypoints
        if isinstance(ep, EventHandler) and ep.handler_type != BROADCAST
    ]
    for handler in handlers:
        handler.setup()  # names the queue; connects to nothing
    answers_rpc = any(isinstance(ep, Rpc) for ep in container.entrypoints)
    rpc_queues = [RPC_QUEUE_TEMPLATE.format(service_cls.name)] if answers_rpc else []
    return sorted([*rpc_queues, *(h.queue.name for h in handlers)])


@overlays
def test_each_service_scales_on_the_queues_nameko_declares_for_it(overlay):
    scalers = scaler_queue_names(render(overlay))
    assert set(scalers) == set(SERVICE_CLASSES)
    for deployment, service_cls in SERVICE_CLASSES.items():
        assert sorted(scalers[deployment]) == _queues_nameko_declares(service_cls), deployment
    assert len(scalers["assessment"]) == 9  # rpc-assessment and its eight event handlers
    assert len(scalers["population"]) == 2  # rpc-population and its event handler
    assert scalers["media"] == ["rpc-media"]  # its describing is media-describer's
    assert len(scalers["media-describer"]) == 1


@overlays
def test_scalers_count_unacknowledged_messages_and_target_at_least_a_replicas_workers(overlay):
    documents = render(overlay)
    max_workers = int(config_map(documents, "gridwork-settings")["NAMEKO_MAX_WORKERS"])
    deployments = objects_of(documents, "Deployment")
    for name, scaled in objects_of(documents, "ScaledObject").items():
        (container,) = deployments[name]["spec"]["template"]["spec"]["containers"]
        own = {e["name"]: e.get("value") for e in container.get("env", [])}
        workers = int(own.get("NAMEKO_MAX_WORKERS") or max_workers)
        assert scaled["spec"]["minReplicaCount"] >= 1, name  # the timers must run
        for trigger in scaled["spec"]["triggers"]:
            metadata = trigger["metadata"]
            assert (metadata["protocol"], metadata["mode"]) == ("http", "QueueLength"), name
            assert float(metadata["value"]) >= workers, name
            assert trigger["authenticationRef"]["name"] == "gridwork-rabbitmq"
            namespace = scaled["metadata"]["namespace"]
            assert metadata["host"] == f"http://gridwork-rabbitmq.{namespace}.svc:15672/"
    hpa = objects_of(documents, "HorizontalPodAutoscaler")["gateway"]
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"


def test_the_scalers_credentials_come_from_a_secret():
    documents = render(OVERLAYS[0])
    auth = objects_of(documents, "TriggerAuthentication")["gridwork-rabbitmq"]
    secrets = objects_of(documents, "Secret")
    for reference in auth["spec"]["secretTargetRef"]:
        assert reference["key"] in secrets[reference["name"]]["data"]


def _pod_specs(documents):
    for kind in ("Deployment", "StatefulSet", "Job"):
        for name, workload in objects_of(documents, kind).items():
            yield f"{kind}/{name}", workload["spec"]["template"]["spec"]


@overlays
def test_every_pod_is_non_root_read_only_and_bounded(overlay):
    for name, pod in _pod_specs(render(overlay)):
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
            assert {"cpu", "memory"} <= set(container["resources"]["limits"]), name


@overlays
def test_gridwork_processes_probe_their_own_health_endpoints(overlay):
    deployments = objects_of(render(overlay), "Deployment")
    assert set(deployments) == set(GRIDWORK_DEPLOYMENTS)
    for name, deployment in deployments.items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        # The gateway's /readyz is the whole stack's; its pods are ready when they serve.
        ready = "/healthz" if name == "gateway" else "/readyz"
        assert container["readinessProbe"]["httpGet"]["path"] == ready, name
        port = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert port == ({"http": 8080} if name == "gateway" else {"metrics": 9100}), name


# The slowest bounded handler: the month-end publication of a county month of 1,000,000
# facts took about 21 s (bench/assessment.py, docs/benchmarks.md).
SLOWEST_HANDLER_S = 21


@overlays
def test_services_have_longer_to_stop_than_the_slowest_handler(overlay):
    deployments = objects_of(render(overlay), "Deployment")
    for name in NAMEKO_SERVICES:
        grace = deployments[name]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert grace >= 2 * SLOWEST_HANDLER_S, name


@overlays
def test_every_process_has_a_disruption_budget_and_the_gateway_tls(overlay):
    documents = render(overlay)
    budgets = objects_of(documents, "PodDisruptionBudget")
    for name in GRIDWORK_DEPLOYMENTS:
        assert budgets[name]["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": name}
    ingress = objects_of(documents, "Ingress")["gridwork"]
    hosts = {rule["host"] for rule in ingress["spec"]["rules"]}
    assert set(ingress["spec"]["tls"][0]["hosts"]) == hosts
    county = config_map(documents, "gridwork-county")
    assert hosts == {county["PUBLIC_GATEWAY_HOST"], county["S3_PUBLIC_ENDPOINT"]}


@overlays
def test_credentials_and_keys_come_from_secrets_never_the_config_map(overlay):
    documents = render(overlay)
    settings = {
        **config_map(documents, "gridwork-settings"),
        **config_map(documents, "gridwork-county"),
    }
    for secret in ("TOKEN_SECRET", "PII_ENCRYPTION_KEY", "PII_INDEX_KEY", "S3_SECRET_KEY"):
        assert secret not in settings
    assert "GRIDWORK_DEV_MODE" not in settings
    # Every setting the ConfigMaps carry is one Gridwork reads (or a county address).
    from gridwork_common.config import ENVIRONMENT_VARIABLES

    gateway_only = {"GATEWAY_HOST", "GATEWAY_PORT", "GATEWAY_WORKERS", "GATEWAY_THREADS"}
    known = {*ENVIRONMENT_VARIABLES, *gateway_only, "PROMETHEUS_MULTIPROC_DIR"}
    addresses = {"PUBLIC_GATEWAY_HOST", "BACKUP_STORE_HOST"}
    assert set(settings) - known == addresses


def test_engine_images_are_pinned_and_the_same_in_compose():
    text = "\n".join(path.read_text() for path in sorted((K8S / "base" / "engines").glob("*.yaml")))
    compose = (Path(K8S).parents[1] / "docker-compose.yml").read_text()
    for image in (
        "rabbitmq:4.2.6-management",
        "percona/percona-server-mongodb:8.0.19-7",
        "minio/minio:RELEASE.2025-09-07T16-13-09Z",
        "minio/mc:RELEASE.2025-08-13T08-35-41Z",
    ):
        assert f"image: {image}" in text
        assert f"image: {image}" in compose
