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
        (LogicConfig, {k: v for k, v in LOGIC_ENV.items() if k != "IM_MYSQL_URL"},
         "IM_MYSQL_URL (or IM_MYSQL_URL_FILE) is required"),
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
        (ServeConfig, {"IM_TLS_CERT_FILE": "/tls/tls.crt"}, "IM_TLS_CERT_FILE and IM_TLS_KEY_FILE must be"),
        (LogicConfig, {**LOGIC_ENV, "IM_GRPC_TLS_KEY_FILE": "/tls/tls.key"}, "IM_GRPC_TLS_CERT_FILE and"),
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


SECRET_SETTINGS = {"IM_JWT_SECRET", "IM_MYSQL_URL", "IM_REDIS_URL", "IM_RABBITMQ_URL"}


@pytest.mark.parametrize("config_type", [GatewayConfig, LogicConfig, ServeConfig])
def test_exactly_the_credentials_are_secret_settings(config_type: type) -> None:
    import dataclasses
    marked = {f.metadata["env"] for f in dataclasses.fields(config_type) if f.metadata.get("secret")}
    assert marked == SECRET_SETTINGS & {f.metadata["env"] for f in dataclasses.fields(config_type)}


def test_every_secret_setting_can_be_read_from_a_file(tmp_path: Path) -> None:
    env = {}
    for name, value in LOGIC_ENV.items():
        (tmp_path / name).write_text(value + "\n")  # as `echo` or an editor leaves it
        env[f"{name}_FILE"] = str(tmp_path / name)
    config = load(LogicConfig, env)
    assert (config.mysql_url, config.redis_url, config.rabbitmq_url, config.jwt_secret) == tuple(LOGIC_ENV.values())


def test_only_secret_settings_have_a_file_variant(tmp_path: Path) -> None:
    (tmp_path / "shards").write_text("3")
    config = load(LogicConfig, {**LOGIC_ENV, "IM_SHARDS_FILE": str(tmp_path / "shards")})
    assert config.shards == LogicConfig.__dataclass_fields__["shards"].default


def test_a_value_given_both_ways_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text(SECRET)
    with pytest.raises(ConfigError, match="IM_JWT_SECRET and IM_JWT_SECRET_FILE are both set"):
        load(LogicConfig, {**LOGIC_ENV, "IM_JWT_SECRET_FILE": str(tmp_path / "secret")})


def test_an_unreadable_secret_file_is_named_without_its_content(tmp_path: Path) -> None:
    env = {k: v for k, v in LOGIC_ENV.items() if k != "IM_MYSQL_URL"}
    with pytest.raises(ConfigError, match=r"IM_MYSQL_URL_FILE: cannot read .*missing.*No such file"):
        load(LogicConfig, {**env, "IM_MYSQL_URL_FILE": str(tmp_path / "missing")})
    (tmp_path / "bad").write_text("postgres://root:hunter2@db/im")
    with pytest.raises(ConfigError) as caught:
        load(LogicConfig, {**env, "IM_MYSQL_URL_FILE": str(tmp_path / "bad")})
    assert "IM_MYSQL_URL" in str(caught.value) and "hunter2" not in str(caught.value)
