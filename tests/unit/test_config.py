import base64
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gridwork_common.clock import CLOCK_CONFIG_KEY, pinned_clock_since, utc_now
from gridwork_common.config import ENVIRONMENT_VARIABLES, ConfigError, Settings

ROOT = Path(__file__).resolve().parents[2]
DEV = {"GRIDWORK_DEV_MODE": "true"}
KEYS = ("TOKEN_SECRET", "PII_ENCRYPTION_KEY", "PII_INDEX_KEY")
REAL_KEYS = {name: base64.b64encode(os.urandom(32)).decode() for name in KEYS}


def test_defaults_work_on_a_developer_machine():
    settings = Settings.from_env(DEV)
    assert settings.amqp_uri == "amqp://guest:guest@127.0.0.1:5672/"
    assert "replicaSet=rs0" in settings.mongo_uri
    assert settings.s3_region == "us-east-1"
    assert settings.county_code == "530402"
    assert settings.s3_secure is False


def test_the_management_api_defaults_to_the_amqp_user_and_the_vhost_is_the_uris():
    settings = Settings.from_env(DEV)
    assert settings.rabbitmq_management_url == "http://127.0.0.1:15672"
    assert (settings.rabbitmq_management_user, settings.rabbitmq_management_password) == (
        "guest",
        "guest",
    )
    assert settings.amqp_vhost == "/"
    county = Settings.from_env(
        {**DEV, "AMQP_URI": "amqp://gridwork:p%40ss@rabbitmq:5672/county%2F530402"}
    )
    assert (county.rabbitmq_management_user, county.rabbitmq_management_password) == (
        "gridwork",
        "p@ss",
    )
    assert county.amqp_vhost == "county/530402"
    assert "p@ss" not in repr(county.with_changes(amqp_uri="amqp://x@y/"))


def test_environment_overrides_defaults():
    settings = Settings.from_env(
        {
            **DEV,
            "COUNTY_CODE": "140702",
            "METRICS_PORT": "9200",
            "S3_SECURE": "yes",
            "RPC_TIMEOUT": "2.5",
        }
    )
    assert (settings.county_code, settings.metrics_port) == ("140702", 9200)
    assert settings.s3_secure is True
    assert settings.s3_public_secure is True  # follows S3_SECURE unless set
    assert settings.rpc_timeout == 2.5


def test_phones_may_reach_the_store_over_tls_while_services_do_not():
    settings = Settings.from_env(
        {**DEV, "S3_PUBLIC_ENDPOINT": "files.county.example", "S3_PUBLIC_SECURE": "true"}
    )
    assert (settings.s3_secure, settings.s3_public_secure) == (False, True)


def test_each_service_gets_its_own_database_and_event_source():
    settings = Settings.from_env({**DEV, "MONGO_DB_PREFIX": "yuxi", "COUNTY_CODE": "530402"})
    assert settings.database_name("population") == "yuxi_population"
    assert settings.database_name("events") == "yuxi_events"
    assert settings.event_source("events") == "/counties/530402/events"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("COUNTY_CODE", "5304", "6-digit"),
        ("COUNTY_CODE", "53040A", "6-digit"),
        ("METRICS_PORT", "ninety", "integer"),
        ("METRICS_PORT", "-1", "at least 0"),
        ("MONGO_TIMEOUT_MS", "10", "at least 100"),
        ("RPC_TIMEOUT", "0", "positive"),
        ("S3_SECURE", "maybe", "true or false"),
        ("AMQP_URI", "  ", "empty"),
        ("MONGO_DB_PREFIX", "1bad-name", "letter"),
        ("LOG_LEVEL", "LOUD", "DEBUG"),
        ("PII_ENCRYPTION_KEY", "not base64!", "base64"),
        ("PII_INDEX_KEY", "c2hvcnQ=", "32 bytes"),
        ("TRUSTED_PROXY_HOPS", "-1", "at least 0"),
        ("NAMEKO_MAX_WORKERS", "0", "at least 1"),
        ("AMQP_HEARTBEAT_S", "often", "integer"),
        ("LOGIN_LIMIT_PER_USER", "0", "at least 1"),
        ("OPEN311_LIMIT_PER_MINUTE", "many", "integer"),
        ("GRIDWORK_DEV_MODE", "sometimes", "true or false"),
        ("GRIDWORK_TEST_CLOCK_START", "end of November", "ISO 8601 instant"),
        ("GRIDWORK_TEST_CLOCK_START", "2026-11-30T23:00:00", "with its offset"),
        ("GRIDWORK_TEST_CLOCK_SINCE", "2026-12-01T07:00:00Z", "GRIDWORK_TEST_CLOCK_START"),
    ],
)
def test_bad_values_are_refused_naming_the_variable(variable, value, message):
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({**DEV, variable: value})
    assert raised.value.variable == variable
    assert str(raised.value).startswith(f"{variable}:")
    assert message in str(raised.value)


def test_nameko_config_carries_the_settings_to_dependency_providers():
    settings = Settings.from_env({**DEV, "AMQP_URI": "amqp://u:p@rabbit:5672/county"})
    config = settings.nameko_config()
    assert config["AMQP_URI"] == "amqp://u:p@rabbit:5672/county"
    assert config["serializer"] == "json"
    assert Settings.from_nameko_config(config) is settings


def test_nameko_worker_pool_and_heartbeat_are_settings_nameko_reads():
    from nameko.containers import ServiceContainer
    from nameko.rpc import rpc

    class Probe:
        name = "probe"

        @rpc
        def ping(self):
            return "pong"

    defaults = Settings.from_env(DEV).nameko_config()
    assert (defaults["max_workers"], defaults["HEARTBEAT"]) == (10, 60)  # nameko's own
    settings = Settings.from_env({**DEV, "NAMEKO_MAX_WORKERS": "3", "AMQP_HEARTBEAT_S": "20"})
    config = settings.nameko_config()
    assert ServiceContainer(Probe, config).max_workers == 3
    assert config["HEARTBEAT"] == 20


def test_every_setting_is_documented_in_the_configuration_page():
    text = (ROOT / "docs" / "configuration.md").read_text()
    missing = [name for name in ENVIRONMENT_VARIABLES if f"`{name}`" not in text]
    assert not missing, f"docs/configuration.md does not document {missing}"


@pytest.mark.parametrize("missing", KEYS)
def test_outside_development_mode_every_key_is_required(missing):
    environ = {name: value for name, value in REAL_KEYS.items() if name != missing}
    with pytest.raises(ConfigError) as raised:
        Settings.from_env(environ)
    assert raised.value.variable == missing
    assert "GRIDWORK_DEV_MODE" in str(raised.value)


@pytest.mark.parametrize("flag", ["", "false", "0"])
def test_development_mode_must_be_explicit(flag):
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"GRIDWORK_DEV_MODE": flag} if flag else {})
    assert raised.value.variable in KEYS


def test_the_public_development_keys_are_refused_outside_development_mode():
    development = Settings.from_env(DEV)
    published = base64.b64encode(development.token_secret).decode()
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({**REAL_KEYS, "TOKEN_SECRET": published})
    assert raised.value.variable == "TOKEN_SECRET"


def test_real_keys_are_used_outside_development_mode():
    settings = Settings.from_env(REAL_KEYS)
    assert settings.dev_mode is False
    assert settings.token_secret == base64.b64decode(REAL_KEYS["TOKEN_SECRET"])
    assert settings.pii_index_key == base64.b64decode(REAL_KEYS["PII_INDEX_KEY"])


def _without_development_mode(**extra) -> dict:
    environ = {
        name: value
        for name, value in os.environ.items()
        if name not in (*KEYS, "GRIDWORK_DEV_MODE")
    }
    return {**environ, **extra}


def test_the_gateway_without_keys_stops_instead_of_restarting_workers(tmp_path):
    finished = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "services/gateway/gunicorn_conf.py"],
        cwd=ROOT,
        env=_without_development_mode(
            TOKEN_SECRET=REAL_KEYS["TOKEN_SECRET"],
            PII_ENCRYPTION_KEY=REAL_KEYS["PII_ENCRYPTION_KEY"],
            GATEWAY_PORT="0",
            GATEWAY_WORKERS="1",
            PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode != 0
    assert "refusing to start: PII_INDEX_KEY" in finished.stdout + finished.stderr


def test_a_service_without_keys_refuses_to_start_naming_the_setting():
    """A real service process (`python -m services.events`), without development mode
    and without TOKEN_SECRET, exits at once (before it reaches the broker)."""
    environ = _without_development_mode(
        PII_ENCRYPTION_KEY=REAL_KEYS["PII_ENCRYPTION_KEY"],
        PII_INDEX_KEY=REAL_KEYS["PII_INDEX_KEY"],
        AMQP_URI="amqp://guest:guest@127.0.0.1:1/",  # never reached
    )
    finished = subprocess.run(
        [sys.executable, "-m", "services.events"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode != 0
    assert "TOKEN_SECRET" in finished.stderr
    assert "Traceback" not in finished.stderr


def test_secrets_never_appear_in_the_settings_repr():
    settings = Settings.from_env({**DEV, "S3_SECRET_KEY": "s3-very-secret"})
    text = repr(settings)
    assert "s3-very-secret" not in text
    assert "pii_encryption_key" not in text and "pii_index_key" not in text


def test_previous_keys_are_optional_lists_of_other_keys():
    assert Settings.from_env(DEV).token_secrets_previous == ()
    old, older = base64.b64encode(b"a" * 32).decode(), base64.b64encode(b"b" * 32).decode()
    settings = Settings.from_env({**DEV, "TOKEN_SECRETS_PREVIOUS": f"{old}, {older}"})
    assert settings.token_secrets_previous == (b"a" * 32, b"b" * 32)
    current = base64.b64encode(Settings.from_env(DEV).pii_index_key).decode()
    with pytest.raises(ConfigError) as same:
        Settings.from_env({**DEV, "PII_INDEX_KEYS_PREVIOUS": current})
    assert same.value.variable == "PII_INDEX_KEYS_PREVIOUS"
    with pytest.raises(ConfigError, match="32 bytes"):
        Settings.from_env({**DEV, "PII_ENCRYPTION_KEYS_PREVIOUS": "c2hvcnQ="})


def test_the_test_clock_setting_pins_one_clock_per_process_and_is_unset_by_default():
    assert Settings.from_env(DEV).test_clock_start is None
    assert Settings.from_env(DEV).clock() is utc_now
    assert CLOCK_CONFIG_KEY not in Settings.from_env(DEV).nameko_config()
    pinned = {**DEV, "GRIDWORK_TEST_CLOCK_START": "2026-12-01T07:00:00+08:00"}
    settings = Settings.from_env(pinned)
    assert settings.test_clock_start == datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    clock = settings.clock()
    # Every reader in the process shares it: settings read again, the nameko config.
    assert Settings.from_env(pinned).clock() is clock
    assert settings.nameko_config()[CLOCK_CONFIG_KEY] is clock
    assert clock() >= settings.test_clock_start
    since = "2026-12-01T09:00:00+00:00"
    earlier = Settings.from_env({**pinned, "GRIDWORK_TEST_CLOCK_SINCE": since})
    assert earlier.test_clock_since == datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def test_a_clock_pinned_since_an_earlier_moment_has_run_on_from_it():
    # Another process pinned the start when the machine read 09:00; this one reads the
    # machine at 10:00: its clock is an hour on from the pin, then runs by `monotonic`.
    start = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    since = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    ticks = [100.0]
    clock = pinned_clock_since(
        start, since, machine_clock=lambda: since + timedelta(hours=1), monotonic=lambda: ticks[0]
    )
    assert clock() == start + timedelta(hours=1)
    ticks[0] += 5.0
    assert clock() == start + timedelta(hours=1, seconds=5)
    unset = pinned_clock_since(start, None, monotonic=lambda: ticks[0])
    assert unset() == start


def test_a_service_with_an_unusable_test_clock_refuses_to_start_naming_the_setting():
    finished = subprocess.run(
        [sys.executable, "-m", "services.events"],
        cwd=ROOT,
        env={
            **os.environ,
            **DEV,
            "GRIDWORK_TEST_CLOCK_START": "last evening of November",
            "AMQP_URI": "amqp://guest:guest@127.0.0.1:1/",  # never reached
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode != 0
    assert "refusing to start: GRIDWORK_TEST_CLOCK_START: must be an ISO 8601" in finished.stderr
    assert "Traceback" not in finished.stderr
