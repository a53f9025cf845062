"""The container files, checked without a Docker engine (none runs here)."""

import re
from pathlib import Path

import pytest
import yaml
from compose_spec import PyOptions

ROOT = Path(__file__).resolve().parents[2]
NAMEKO_SERVICES = ("population", "events", "media", "media-describer", "assessment")
# The processes that are not `python -m services.<name>`: the media service's two roles.
COMMANDS = {
    "media": ["python", "-m", "services.media", "api"],
    "media-describer": ["python", "-m", "services.media", "describer"],
}
GRIDWORK_SERVICES = (*NAMEKO_SERVICES, "gateway")


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _parsed_by_compose_spec(text: str):
    # PyPI's compose-spec (the compose_spec Rust crate): parses and validates the file as
    # Docker Compose does; apply_merge resolves the file's `<<:` merge keys first.
    parsed = PyOptions(apply_merge=True).from_yaml(text)
    parsed.validate()
    return parsed


def test_compose_file_matches_the_compose_specification():
    parsed = _parsed_by_compose_spec((ROOT / "docker-compose.yml").read_text())
    assert {"gateway", "webhooks", *NAMEKO_SERVICES} <= set(parsed.service_names())


@pytest.mark.parametrize(
    ("valid", "broken"),
    [
        ('command: ["python", "-m", "services.events"]', "command: 42"),
        ("restart: unless-stopped", "restrat: unless-stopped"),
        ("condition: service_healthy", "condition: service_happy"),
    ],
)
def test_compose_validation_would_catch_a_broken_file(valid, broken):
    text = (ROOT / "docker-compose.yml").read_text()
    assert valid in text
    with pytest.raises(ValueError):
        _parsed_by_compose_spec(text.replace(valid, broken, 1))


def test_compose_runs_official_images_and_one_container_per_service(compose):
    services = compose["services"]
    assert services["rabbitmq"]["image"].startswith("rabbitmq:4.2.6-management")
    assert services["mongo"]["image"].startswith("percona/percona-server-mongodb:8.0.")
    assert "--replSet" in services["mongo"]["command"]
    assert services["minio"]["image"].startswith("minio/minio:RELEASE.")
    assert services["prometheus"]["image"].startswith("prom/prometheus:v3.")
    for name in NAMEKO_SERVICES:
        expected = COMMANDS.get(name, ["python", "-m", f"services.{name}"])
        assert services[name]["command"] == expected, name
    for name in GRIDWORK_SERVICES:
        assert services[name]["image"] == "gridwork:latest"


def test_every_container_has_a_health_check(compose):
    for name, service in compose["services"].items():
        if name != "minio-bucket":  # one-shot job
            assert "healthcheck" in service or name == "prometheus", name


def test_every_engine_image_is_pinned_to_a_release(compose):
    for name, service in compose["services"].items():
        image = service["image"]
        if image == "gridwork:latest":  # built from this repository (`build: .`)
            continue
        tag = image.rpartition(":")[2]
        assert ":" in image and tag not in ("latest", "") and any(c.isdigit() for c in tag), name
        moving = re.fullmatch(r"v?\d+(\.\d+)?(-management)?", tag)  # e.g. 3.10-management
        assert not moving, f"{name}: {image} is a moving tag"


def test_gridwork_processes_are_checked_on_their_own_probes(compose):
    for name in (*NAMEKO_SERVICES, "webhooks"):
        check = " ".join(compose["services"][name]["healthcheck"]["test"])
        assert "127.0.0.1:9100/readyz" in check, name


def test_services_scale_no_fixed_host_ports(compose):
    for name in GRIDWORK_SERVICES:
        for port in compose["services"][name].get("ports", []):
            assert ":" not in str(port), f"{name} publishes a fixed host port: {port}"
        assert "container_name" not in compose["services"][name]


def test_county_code_is_set_in_one_place(compose):
    text = (ROOT / "docker-compose.yml").read_text()
    assert len(re.findall(r"^\s*COUNTY_CODE:", text, flags=re.MULTILINE)) == 1
    for name in GRIDWORK_SERVICES:
        assert compose["services"][name]["environment"]["COUNTY_CODE"] == "${COUNTY_CODE:-530402}"


@pytest.mark.parametrize("key", ["TOKEN_SECRET", "PII_ENCRYPTION_KEY", "PII_INDEX_KEY"])
def test_compose_requires_real_keys_and_never_sets_development_mode(compose, key):
    for name in (*GRIDWORK_SERVICES, "webhooks"):
        environment = compose["services"][name]["environment"]
        assert re.fullmatch(rf"\$\{{{key}:\?.+\}}", environment[key]), (name, environment[key])
        assert "GRIDWORK_DEV_MODE" not in environment, name


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus.local.yml"])
def test_prometheus_scrapes_every_service(config):
    prometheus = yaml.safe_load((ROOT / "deploy/prometheus" / config).read_text())
    jobs = {job["job_name"] for job in prometheus["scrape_configs"]}
    assert set(GRIDWORK_SERVICES) <= jobs


def test_local_prometheus_targets_match_the_ports_make_up_uses():
    from devstack.stack import GATEWAY_PORT, SERVICE_METRICS_PORTS

    prometheus = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.local.yml").read_text())
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"][0]
        for job in prometheus["scrape_configs"]
    }
    for name, port in {**SERVICE_METRICS_PORTS, "gateway": GATEWAY_PORT}.items():
        assert targets[name] == f"127.0.0.1:{port}"


def test_compose_prometheus_scrapes_the_ports_the_containers_serve(compose):
    prometheus = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    ports = {
        job["job_name"]: job["dns_sd_configs"][0]["port"]
        for job in prometheus["scrape_configs"]
        if "dns_sd_configs" in job
    }
    env = compose["services"]["population"]["environment"]
    for name in NAMEKO_SERVICES:
        assert ports[name] == int(env["METRICS_PORT"])
    assert ports["gateway"] == int(compose["services"]["gateway"]["environment"]["GATEWAY_PORT"])
