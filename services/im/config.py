"""Typed configuration: dataclass defaults, then `IM_*` environment variables, then command-line flags.

Each setting is a dataclass field whose metadata names its environment variable and documents it;
`load()` builds the object once at the entry point, and a malformed value stops the process with
one line naming the setting. A setting declared `secret` can also be read from a file named by
`<VARIABLE>_FILE` (a mounted Kubernetes Secret), so credentials need not sit in the environment.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

__all__ = [
    "ConfigError", "FILE_SUFFIX", "add_flags", "at_least", "both_or_neither", "check_url", "file_variable", "load",
    "setting",
]

C = TypeVar("C")


class ConfigError(Exception):
    """A setting is missing or malformed; the message names it."""


FILE_SUFFIX = "_FILE"


def setting(env: str, help: str, *, secret: bool = False) -> dict[str, Any]:
    """Field metadata: the variable, a one-line doc, and whether `<env>_FILE` may hold the value instead."""
    return {"env": env, "help": help, "secret": secret}


def file_variable(metadata: Mapping[str, Any]) -> str | None:
    """`IM_X_FILE` for a secret setting `IM_X`, None for the others."""
    env = metadata.get("env")
    return f"{env}{FILE_SUFFIX}" if env and metadata.get("secret") else None


def _read_secret_file(variable: str, path: str) -> str:
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ConfigError(f"{variable}: cannot read {path!r}: {reason}") from None
    # Editors and `echo` end files with a newline that is never part of a credential.
    return text.rstrip("\r\n")


def _convert(raw: str, kind: Any, name: str) -> Any:
    optional = False
    if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        optional = len(args) < len(typing.get_args(kind))
        kind = args[0]
    if optional and raw == "":
        return None
    try:
        if kind is bool:
            lowered = raw.strip().lower()
            if lowered in {"1", "true", "yes", "on"}:
                return True
            if lowered in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
        if kind is Path:
            return Path(raw)
        return str(raw)
    except ValueError:
        raise ConfigError(f"{name}: expected {kind.__name__}, got {raw!r}") from None


def add_flags(parser: argparse.ArgumentParser, cls: type[Any]) -> None:
    """A `--field-name` flag for every setting of `cls` (its value overrides the environment)."""
    for field in dataclasses.fields(cls):
        meta = field.metadata
        parser.add_argument(
            "--" + field.name.replace("_", "-"), dest=field.name, default=None, metavar=field.name.upper(),
            help=f"{meta.get('help', '')} [env {meta.get('env', '-')}, default {field.default!r}]",
        )


def load(cls: type[C], environ: Mapping[str, str], flags: Mapping[str, str | None] | None = None) -> C:
    kinds = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        env = field.metadata.get("env")
        raw = (flags or {}).get(field.name)
        source = f"--{field.name.replace('_', '-')}"
        file_env = file_variable(field.metadata)
        if raw is None and file_env is not None and file_env in environ:
            if env in environ:
                raise ConfigError(f"{env} and {file_env} are both set: give the value one way")
            raw, source = _read_secret_file(file_env, environ[file_env]), file_env
        if raw is None and env is not None and env in environ:
            raw, source = environ[env], env
        if raw is not None:
            values[field.name] = _convert(raw, kinds[field.name], source)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            either = f"{env} (or {file_env})" if file_env else env or source
            raise ConfigError(f"{either} is required: {field.metadata.get('help', field.name)}")
    return cls(**values)


def check_url(setting_name: str, value: str, schemes: tuple[str, ...]) -> None:
    """Refuse a URL that cannot be one of `schemes` with a host, naming the setting."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - reading the port is what checks it
    except ValueError as exc:
        raise ConfigError(f"{setting_name}: malformed URL ({exc})") from None
    if parts.scheme not in schemes or not parts.hostname:
        raise ConfigError(f"{setting_name}: expected {' or '.join(s + '://host...' for s in schemes)}, "
                          f"got {_redact(value)!r}")


def _redact(url: str) -> str:
    """The URL without its password, for error messages."""
    head, at, tail = url.rpartition("@")
    if not at:
        return url
    scheme, sep, credentials = head.partition("://")
    user = credentials.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{tail}"


def at_least(setting_name: str, value: float, minimum: float) -> None:
    if value < minimum:
        raise ConfigError(f"{setting_name}: must be at least {minimum}, got {value}")


def both_or_neither(setting_name: str, value: object, other_name: str, other: object) -> None:
    if (value is None) != (other is None):
        raise ConfigError(f"{setting_name} and {other_name} must be set together")
