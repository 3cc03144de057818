from pathlib import Path

import pytest

from im.apps.config_docs import render
from im.apps.gateway import GatewayConfig
from im.apps.logic import LogicConfig
from im.apps.standalone import ServeConfig
from im.config import ConfigError, load

ROOT = Path(__file__).resolve().parents[2]
SECRET = "x" * 32
LOGIC_ENV = {
    "IM_MYSQL_URL": "mysql://root:pw@db:3306/im", "IM_REDIS_URL": "redis://cache:6379/0",
    "IM_RABBITMQ_URL": "amqp://guest:guest@mq:5672/", "IM_JWT_SECRET": SECRET,
}


def test_the_configuration_doc_is_generated_from_the_dataclasses() -> None:
    assert (ROOT / "docs" / "configuration.md").read_text() == render(), (
        "regenerate with: .venv/bin/python -m im.apps.config_docs > docs/configuration.md"
    )


def test_flags_override_the_environment_which_overrides_defaults() -> None:
    config = load(ServeConfig, {"IM_PORT": "9000", "IM_HOST": "0.0.0.0"}, {"port": "9100", "host": None})
    assert (config.port, config.host, config.batch_max_size) == (9100, "0.0.0.0", 500)


def test_every_setting_is_read_from_its_variable() -> None:
    config = load(LogicConfig, {**LOGIC_ENV, "IM_SHARDS": "16", "IM_BATCH_MAX_DELAY_MS": "2.5"})
    assert (config.mysql_url, config.shards, config.batch_max_delay_ms) == (LOGIC_ENV["IM_MYSQL_URL"], 16, 2.5)


@pytest.mark.parametrize(
    "config_type, env, message",
    [
        (LogicConfig, {k: v for k, v in LOGIC_ENV.items() if k != "IM_MYSQL_URL"}, "IM_MYSQL_URL is required"),
        (LogicConfig, {**LOGIC_ENV, "IM_MYSQL_URL": "postgres://db/im"}, "IM_MYSQL_URL: expected mysql://"),
        (LogicConfig, {**LOGIC_ENV, "IM_REDIS_URL": "redis://:6379"}, "IM_REDIS_URL"),
        (LogicConfig, {**LOGIC_ENV, "IM_RABBITMQ_URL": "amqp://h:notaport/"}, "IM_RABBITMQ_URL: malformed URL"),
        (LogicConfig, {**LOGIC_ENV, "IM_GRPC_PORT": "fifty"}, "IM_GRPC_PORT: expected int, got 'fifty'"),
        (LogicConfig, {**LOGIC_ENV, "IM_JWT_SECRET": "short"}, "IM_JWT_SECRET: must be at least 32 bytes"),
        (LogicConfig, {**LOGIC_ENV, "IM_SHARDS": "0"}, "IM_SHARDS"),
        (GatewayConfig, {**LOGIC_ENV, "IM_LOGIC_ADDR": "logic"}, "IM_LOGIC_ADDR: expected host:port"),
        (GatewayConfig, {**LOGIC_ENV, "IM_LOGIC_ADDR": "logic:1", "IM_GATEWAY_ID": "a b"}, "IM_GATEWAY_ID"),
        (ServeConfig, {"IM_PORT": "70000"}, "IM_PORT"),
        (ServeConfig, {"IM_SQLITE_SYNCHRONOUS": "SOMETIMES"}, "IM_SQLITE_SYNCHRONOUS"),
    ],
)
def test_a_missing_or_malformed_setting_is_one_error_naming_it(
    config_type: type, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load(config_type, env)
    assert message in str(caught.value)
    assert "pw" not in str(caught.value)


def test_passwords_are_not_repeated_in_errors() -> None:
    with pytest.raises(ConfigError) as caught:
        load(LogicConfig, {**LOGIC_ENV, "IM_MYSQL_URL": "postgres://root:hunter2@db/im"})
    assert "hunter2" not in str(caught.value)
