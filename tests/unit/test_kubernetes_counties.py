"""The county overlays of deploy/k8s: a new county changes only its code, its secrets and
its sizes; its example secrets are marked as examples and cannot run a deployment."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import pytest

from gridwork_common.config import ConfigError, Settings
from tests.kubernetes import OVERLAYS, config_map, objects_of, render

# What a county may change besides its code: its secrets, its public addresses and sizes.
COUNTY_FILES = {"county.env", "sizes.yaml", "sizes-mongodb.yaml"}
EXAMPLE_MARK = "# EXAMPLE ONLY"

TOPOLOGY = (
    Path(__file__).resolve().parents[2] / "deploy" / "rabbitmq" / "county" / "definitions.json"
)
overlays = pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)


def _code(overlay: Path) -> str:
    return overlay.name.split("-", 1)[0]


def _files(overlay: Path) -> set[str]:
    return {str(p.relative_to(overlay)) for p in overlay.rglob("*") if p.is_file()}


def _env(path: Path) -> dict[str, str]:
    """An env file as kustomize reads it: NAME=value lines; # comments."""
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def test_there_are_two_example_counties_named_by_their_codes():
    assert len(OVERLAYS) >= 2
    for overlay in OVERLAYS:
        assert re.fullmatch(r"\d{6}-[a-z]+", overlay.name)


def test_counties_differ_only_in_code_secrets_and_sizes():
    first, *others = OVERLAYS
    for other in others:
        assert _files(first) == _files(other)
        for name in _files(first):
            if name in COUNTY_FILES or name.startswith("secrets/"):
                continue
            # Everything else is the same text once the county's code is swapped.
            mine = (first / name).read_text().replace(_code(first), "<code>")
            theirs = (other / name).read_text().replace(_code(other), "<code>")
            assert mine == theirs, name


def test_each_countys_secrets_are_its_own():
    first, second = OVERLAYS[:2]
    for name in _files(first):
        if name.startswith("secrets/"):
            assert (first / name).read_text() != (second / name).read_text(), name


@overlays
def test_the_namespace_and_the_settings_carry_the_same_code(overlay):
    documents = render(overlay)
    (namespace,) = objects_of(documents, "Namespace")
    assert namespace == f"gridwork-{_code(overlay)}"
    assert config_map(documents, "gridwork-county")["COUNTY_CODE"] == _code(overlay)
    assert {doc["metadata"].get("namespace", namespace) for doc in documents} == {namespace}


@overlays
def test_example_secrets_are_marked_and_cannot_start_a_deployment(overlay):
    for path in (overlay / "secrets").glob("*.env"):
        assert path.read_text().startswith(EXAMPLE_MARK), path
        assert ".example." in path.name
    keys = _env(overlay / "secrets" / "keys.example.env")
    assert set(keys) == {"TOKEN_SECRET", "PII_ENCRYPTION_KEY", "PII_INDEX_KEY"}
    with pytest.raises(ConfigError) as refused:
        Settings.from_env(keys)  # outside development mode, as a deployment runs
    assert refused.value.variable in keys


def _rabbitmq_hash_matches(password_hash: str, password: str) -> bool:
    # rabbit_password_hashing_sha256: base64(salt[4] + sha256(salt + password)).
    raw = base64.b64decode(password_hash)
    return hashlib.sha256(raw[:4] + password.encode()).digest() == raw[4:]


@overlays
def test_rabbitmq_boots_with_the_one_topology_file_and_the_countys_users(overlay):
    """The broker loads a directory: the topology every county shares (the quorum-default
    vhost, exchanges, policies: deploy/rabbitmq/county/definitions.json, in one place) and
    the county's secret users file, which defines no vhost of its own."""
    documents = render(overlay)
    topology = objects_of(documents, "ConfigMap")["gridwork-rabbitmq-topology"]["data"]
    assert json.loads(topology["topology.json"]) == json.loads(TOPOLOGY.read_text())
    (vhost,) = json.loads(TOPOLOGY.read_text())["vhosts"]
    assert (vhost["name"], vhost["default_queue_type"]) == ("/", "quorum")
    (cluster,) = objects_of(documents, "RabbitmqCluster").values()
    assert (
        "load_definitions = /etc/rabbitmq/definitions\n"
        in (cluster["spec"]["rabbitmq"]["additionalConfig"])
    )
    (volume,) = [
        v
        for v in cluster["spec"]["override"]["statefulSet"]["spec"]["template"]["spec"]["volumes"]
        if v["name"] == "definitions"
    ]
    mounted = {
        item["path"]: (kind, source[kind]["name"], item["key"])
        for source in volume["projected"]["sources"]
        for kind in source
        for item in source[kind]["items"]
    }
    assert mounted == {
        "topology.json": ("configMap", "gridwork-rabbitmq-topology", "topology.json"),
        "users.json": ("secret", "gridwork-rabbitmq-definitions", "definitions.json"),
    }
    users = json.loads((overlay / "secrets" / "rabbitmq-definitions.example.json").read_text())
    assert set(users) == {"users", "permissions"}


@overlays
def test_rabbitmq_definitions_know_the_app_user(overlay):
    definitions = json.loads(
        (overlay / "secrets" / "rabbitmq-definitions.example.json").read_text()
    )
    app = _env(overlay / "secrets" / "rabbitmq-app.example.env")
    (user,) = [u for u in definitions["users"] if u["name"] == app["username"]]
    assert user["hashing_algorithm"] == "rabbit_password_hashing_sha256"
    assert _rabbitmq_hash_matches(user["password_hash"], app["password"])
    assert not _rabbitmq_hash_matches(user["password_hash"], app["password"] + "x")
    # The management tag lets KEDA read queue depths over HTTP.
    assert "management" in user["tags"]
    (grant,) = [p for p in definitions["permissions"] if p["user"] == app["username"]]
    assert (grant["vhost"], grant["configure"], grant["write"], grant["read"]) == (
        "/",
        ".*",
        ".*",
        ".*",
    )


@overlays
def test_connection_passwords_are_url_safe(overlay):
    # They are spliced into AMQP_URI and MONGO_URI by Kubernetes, unescaped.
    for name in ("rabbitmq-app", "mongodb-app"):
        password = _env(overlay / "secrets" / f"{name}.example.env")["password"]
        assert re.fullmatch(r"[A-Za-z0-9._~-]+", password), name


@overlays
def test_the_gateway_makes_department_broker_users_as_an_administrator_of_its_own(overlay):
    """POST /api/v1/amqp-accounts needs the management API's `administrator` tag: a user
    of its own (the services' user keeps only `management`), reading no queue."""
    definitions = json.loads(
        (overlay / "secrets" / "rabbitmq-definitions.example.json").read_text()
    )
    admin = _env(overlay / "secrets" / "rabbitmq-admin.example.env")
    assert admin["username"] != _env(overlay / "secrets" / "rabbitmq-app.example.env")["username"]
    (user,) = [u for u in definitions["users"] if u["name"] == admin["username"]]
    assert user["tags"] == ["administrator"]
    assert _rabbitmq_hash_matches(user["password_hash"], admin["password"])
    assert not [p for p in definitions["permissions"] if p["user"] == admin["username"]]

    deployments = objects_of(render(overlay), "Deployment")
    for name, deployment in deployments.items():
        (app,) = deployment["spec"]["template"]["spec"]["containers"]
        env = {item["name"]: item for item in app.get("env", [])}
        if name != "gateway":  # only the gateway makes broker users
            assert "RABBITMQ_MANAGEMENT_USER" not in env, name
            continue
        assert env["RABBITMQ_MANAGEMENT_URL"]["value"] == "http://gridwork-rabbitmq:15672"
        for variable, key in (("USER", "username"), ("PASSWORD", "password")):
            reference = env[f"RABBITMQ_MANAGEMENT_{variable}"]["valueFrom"]["secretKeyRef"]
            assert reference["name"].startswith("gridwork-rabbitmq-admin")
            assert reference["key"] == key
