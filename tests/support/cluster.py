"""A distributed imcluster on this machine: logic and gateway processes over real MySQL, Redis, RabbitMQ."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.processes import BIN, ClientFacingProcess, ManagedProcess, free_port, http_ok, port_open
from tests.support.servers import (
    MYSQL_URL,
    RABBITMQ_URL,
    REDIS_URL,
    mysql_database,
    rabbitmq_vhost,
    redis_prefix,
)


@dataclass(frozen=True)
class Backends:
    mysql_url: str
    redis_url: str
    redis_prefix: str
    rabbitmq_url: str


@contextmanager
def isolated_backends(
    mysql_server: str = MYSQL_URL, redis_url: str = REDIS_URL, rabbitmq_server: str = RABBITMQ_URL,
) -> Iterator[Backends]:
    """A fresh database, key prefix and vhost on the given servers, removed afterwards."""
    with mysql_database(mysql_server) as mysql_url, redis_prefix(redis_url) as prefix, \
            rabbitmq_vhost(rabbitmq_server) as rabbitmq_url:
        yield Backends(mysql_url, redis_url, prefix, rabbitmq_url)


class GatewayProcess(ClientFacingProcess):
    gateway_id: str


@dataclass
class LocalCluster:
    backends: Backends
    workdir: Path
    shards: int = 4
    jwt_secret: str = field(default_factory=lambda: secrets.token_urlsafe(40))
    logics: list[ManagedProcess] = field(default_factory=list)
    gateways: list[GatewayProcess] = field(default_factory=list)

    def _env(self, **extra: str) -> dict[str, str]:
        return {
            "IM_MYSQL_URL": self.backends.mysql_url,
            "IM_REDIS_URL": self.backends.redis_url,
            "IM_REDIS_PREFIX": self.backends.redis_prefix,
            "IM_RABBITMQ_URL": self.backends.rabbitmq_url,
            "IM_JWT_SECRET": self.jwt_secret,
            "IM_SHARDS": str(self.shards),
            "IM_METRICS_PORT": "0",
            **extra,
        }

    def start_logic(self, **env: str) -> ManagedProcess:
        port = free_port()
        logic = ManagedProcess(
            name=f"logic{len(self.logics)}",
            argv=[str(BIN / "im-logic"), "--grpc-host", "127.0.0.1", "--grpc-port", str(port)],
            log_path=self.workdir / f"logic{len(self.logics)}.log",
            ready=port_open(port),
            env=self._env(**env),
        )
        logic.grpc_port = port  # type: ignore[attr-defined]
        logic.start()
        self.logics.append(logic)
        return logic

    def start_gateway(self, logic: ManagedProcess | None = None, **env: str) -> GatewayProcess:
        target = logic or self.logics[0]
        port, metrics_port = free_port(), free_port()
        gateway_id = f"gw{len(self.gateways)}-{secrets.token_hex(2)}"
        gateway = GatewayProcess(
            name=gateway_id,
            argv=[str(BIN / "im-gateway"), "--host", "127.0.0.1", "--port", str(port), "--gateway-id", gateway_id],
            log_path=self.workdir / f"{gateway_id}.log",
            ready=http_ok(f"http://127.0.0.1:{port}/readyz"),
            env=self._env(**{"IM_LOGIC_ADDR": f"127.0.0.1:{target.grpc_port}",  # type: ignore[attr-defined]
                             "IM_METRICS_PORT": str(metrics_port), **env}),
        )
        gateway.port = port
        gateway.metrics_port = metrics_port
        gateway.gateway_id = gateway_id
        gateway.start()
        self.gateways.append(gateway)
        return gateway

    def stop(self) -> None:
        for process in [*self.gateways, *self.logics]:
            if process.running:
                process.kill()


@contextmanager
def local_cluster(workdir: Path, backends: Backends, **options: object) -> Iterator[LocalCluster]:
    cluster = LocalCluster(backends, workdir, **options)  # type: ignore[arg-type]
    with ExitStack() as stack:
        stack.callback(cluster.stop)
        yield cluster
