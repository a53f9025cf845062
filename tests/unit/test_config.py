import pytest

from gridwork_common.config import ENVIRONMENT_VARIABLES, ConfigError, Settings


def test_defaults_work_on_a_developer_machine():
    settings = Settings.from_env({})
    assert settings.amqp_uri == "amqp://guest:guest@127.0.0.1:5672/"
    assert "replicaSet=rs0" in settings.mongo_uri
    assert settings.s3_region == "us-east-1"
    assert settings.county_code == "530402"
    assert settings.s3_secure is False


def test_environment_overrides_defaults():
    settings = Settings.from_env(
        {"COUNTY_CODE": "140702", "METRICS_PORT": "9200", "S3_SECURE": "yes", "RPC_TIMEOUT": "2.5"}
    )
    assert (settings.county_code, settings.metrics_port) == ("140702", 9200)
    assert settings.s3_secure is True
    assert settings.rpc_timeout == 2.5


def test_each_service_gets_its_own_database_and_event_source():
    settings = Settings.from_env({"MONGO_DB_PREFIX": "yuxi", "COUNTY_CODE": "530402"})
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
    ],
)
def test_bad_values_are_refused_naming_the_variable(variable, value, message):
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({variable: value})
    assert raised.value.variable == variable
    assert str(raised.value).startswith(f"{variable}:")
    assert message in str(raised.value)


def test_nameko_config_carries_the_settings_to_dependency_providers():
    settings = Settings.from_env({"AMQP_URI": "amqp://u:p@rabbit:5672/county"})
    config = settings.nameko_config()
    assert config["AMQP_URI"] == "amqp://u:p@rabbit:5672/county"
    assert config["serializer"] == "json"
    assert Settings.from_nameko_config(config) is settings


def test_every_setting_is_documented_in_the_readme():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    missing = [name for name in ENVIRONMENT_VARIABLES if f"`{name}`" not in readme]
    assert not missing, f"README does not document {missing}"


def test_secrets_never_appear_in_the_settings_repr():
    settings = Settings.from_env({"S3_SECRET_KEY": "s3-very-secret"})
    text = repr(settings)
    assert "s3-very-secret" not in text
    assert "pii_encryption_key" not in text and "pii_index_key" not in text
