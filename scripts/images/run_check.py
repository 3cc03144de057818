"""Run logic and a gateway from their images, chat through them, drain the gateway; check the operator image.

Called by `scripts/images-check` after the images are built. `buildah run --isolation chroot` shares
the host network and PID namespace, so the containers reach this machine's MariaDB, Redis and
RabbitMQ on 127.0.0.1, the chat client (the `.venv`'s `im.client`) reaches the gateway on a free port,
and the gateway's Python process can be sent SIGTERM directly (buildah itself does not forward it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from im.client import ChatConnection, HttpClient  # noqa: E402
from tests.support.cluster import Backends, isolated_backends  # noqa: E402
from tests.support.processes import free_port, http_ok, port_open  # noqa: E402

REQUIRED_LABELS = ("org.opencontainers.image.title", "org.opencontainers.image.version",
                   "org.opencontainers.image.source", "org.opencontainers.image.licenses")


def fail(message: str) -> None:
    raise SystemExit(f"FAIL: {message}")


def image_config(image: str) -> dict:  # type: ignore[type-arg]
    out = subprocess.run(["buildah", "inspect", "--type", "image", image],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)["OCIv1"]["config"]  # type: ignore[no-any-return]


def check_config(image: str, entrypoint: str, ports: set[str]) -> list[str]:
    """The image metadata the Dockerfiles promise; returns the entrypoint."""
    config = image_config(image)
    if config.get("Entrypoint") != [entrypoint]:
        fail(f"{image}: entrypoint {config.get('Entrypoint')}, expected exec form [{entrypoint!r}]")
    if config.get("User") != "10001:10001":
        fail(f"{image}: runs as {config.get('User')!r}, expected 10001:10001")
    if config.get("StopSignal") != "SIGTERM":
        fail(f"{image}: stop signal {config.get('StopSignal')!r}")
    if set(config.get("ExposedPorts", {})) != ports:
        fail(f"{image}: exposes {sorted(config.get('ExposedPorts', {}))}, expected {sorted(ports)}")
    missing = [label for label in REQUIRED_LABELS if label not in config.get("Labels", {})]
    if missing:
        fail(f"{image}: labels missing: {missing}")
    return list(config["Entrypoint"])


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                # The command name may hold spaces and parentheses: the parent pid follows the last ')'.
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class Container:
    """A working container of `image`, its entrypoint run with `buildah run --isolation chroot`."""

    def __init__(self, image: str, name: str, log_path: Path) -> None:
        self.image = image
        self.name = name
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.entrypoint: list[str] = []

    def __enter__(self) -> Container:
        subprocess.run(["buildah", "rm", self.name], capture_output=True)
        subprocess.run(["buildah", "from", "--name", self.name, self.image], check=True, capture_output=True)
        self.entrypoint = list(image_config(self.image)["Entrypoint"])
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        subprocess.run(["buildah", "rm", self.name], capture_output=True)

    def run(self, args: list[str], env: dict[str, str], ready: Callable[[], bool], timeout: float = 60) -> None:
        env_flags = [flag for key, value in env.items() for flag in ("--env", f"{key}={value}")]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                ["buildah", "run", "--isolation", "chroot", *env_flags, self.name, "--", *self.entrypoint, *args],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                fail(f"{self.name} exited with {self.process.returncode}:\n{self.log()}")
            if ready():
                return
            time.sleep(0.2)
        fail(f"{self.name} not ready in {timeout}s:\n{self.log()}")

    def main_pid(self) -> int:
        """The entrypoint's process (buildah's own processes sit between it and us)."""
        assert self.process is not None
        for pid in descendants(self.process.pid):
            with contextlib.suppress(OSError):
                # buildah's chroot runtime re-executes itself under the command's argv: skip it by name.
                if Path(f"/proc/{pid}/comm").read_text().startswith(("memfd:", "buildah")):
                    continue
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                if any(arg.decode(errors="replace") == self.entrypoint[0] for arg in argv[:2]):
                    return pid
        fail(f"no {self.entrypoint[0]} process under buildah run {self.process.pid}")
        raise AssertionError

    def terminate(self, timeout: float) -> int:
        """SIGTERM to the entrypoint, as `docker stop` or the kubelet would; returns the exit status."""
        assert self.process is not None
        os.kill(self.main_pid(), signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            fail(f"{self.name} still running {timeout}s after SIGTERM:\n{self.log()}")
            raise

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]


async def chat(base_url: str) -> None:
    http = HttpClient(base_url)
    tag = secrets.token_hex(3)
    ann = await http.signup(f"ann-{tag}@example.test")
    bob = await http.signup(f"bob-{tag}@example.test")
    a = await ChatConnection.open(http.ws_url, ann.token)
    b = await ChatConnection.open(http.ws_url, bob.token)
    await a.send("hello-1", "hi Bob", to=bob.user_id)
    ack = await a.expect("ack")
    got = await b.expect("msg")
    if ack["cid"] != "hello-1" or got["content"] != "hi Bob" or got["from"] != ann.user_id:
        fail(f"ann -> bob: ack {ack}, bob got {got}")
    await b.send("re-1", "hi Ann", to=ann.user_id)
    await b.expect("ack")
    if (await a.expect("msg"))["content"] != "hi Ann":
        fail("bob -> ann not delivered")
    inbox = [m["content"] for m in await a.sync_all()]
    if inbox != ["hi Bob", "hi Ann"]:
        fail(f"ann's inbox after sync: {inbox}")
    await a.close()
    await b.close()
    print("   chat: ann and bob exchanged messages through the gateway image; sync returned both")


def run_cluster(version: str, logs: Path, backends: Backends) -> None:
    jwt_secret = secrets.token_urlsafe(40)
    common = {
        "IM_REDIS_URL": backends.redis_url, "IM_REDIS_PREFIX": backends.redis_prefix,
        "IM_RABBITMQ_URL": backends.rabbitmq_url, "IM_JWT_SECRET": jwt_secret, "IM_SHARDS": "2",
    }
    grpc_port, gateway_port, metrics_port = free_port(), free_port(), free_port()
    suffix = secrets.token_hex(3)
    with Container(f"localhost/imcluster/logic:{version}", f"imcheck-logic-{suffix}", logs / "logic.log") as logic, \
            Container(f"localhost/imcluster/gateway:{version}", f"imcheck-gateway-{suffix}",
                      logs / "gateway.log") as gateway:
        logic.run([], {**common, "IM_MYSQL_URL": backends.mysql_url, "IM_GRPC_PORT": str(grpc_port),
                       "IM_METRICS_PORT": "0"}, port_open(grpc_port))
        print(f"   logic image serving gRPC on :{grpc_port}")
        gateway.run([], {**common, "IM_LOGIC_ADDR": f"127.0.0.1:{grpc_port}", "IM_PORT": str(gateway_port),
                         "IM_METRICS_PORT": str(metrics_port), "IM_GATEWAY_ID": f"imcheck-{suffix}",
                         "IM_DRAIN_SECONDS": "2"},
                    http_ok(f"http://127.0.0.1:{gateway_port}/readyz"))
        print(f"   gateway image ready on :{gateway_port} (metrics :{metrics_port})")
        if not http_ok(f"http://127.0.0.1:{metrics_port}/metrics")():
            fail("the gateway's metrics port does not answer")
        asyncio.run(chat(f"http://127.0.0.1:{gateway_port}"))
        code = gateway.terminate(timeout=20)
        if code != 0 or "draining" not in gateway.log():
            fail(f"gateway exited with {code} after SIGTERM, log:\n{gateway.log()}")
        print("   gateway drained on SIGTERM and exited 0")
        code = logic.terminate(timeout=30)
        if code != 0:
            fail(f"logic exited with {code} after SIGTERM, log:\n{logic.log()}")
        print("   logic stopped on SIGTERM and exited 0")


def check_operator(version: str, logs: Path) -> None:
    image = f"localhost/imcluster/operator:{version}"
    with Container(image, f"imcheck-operator-{secrets.token_hex(3)}", logs / "operator.log") as operator:
        out = subprocess.run(["buildah", "run", "--isolation", "chroot", operator.name, "--",
                              *operator.entrypoint, "--help"], capture_output=True, text=True, timeout=60)
        if out.returncode != 0 or "usage: im-operator" not in out.stdout:
            fail(f"im-operator --help in {image}: {out.returncode}\n{out.stdout}{out.stderr}")
        out = subprocess.run(["buildah", "run", "--isolation", "chroot", operator.name, "--",
                              "python3", "-c", "import im_operator.handlers, kopf, kubernetes.aio"],
                             capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            fail(f"the operator's handlers do not import in {image}:\n{out.stderr}")
    print("   operator image: im-operator --help runs, handlers import")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--version", required=True)
    parser.add_argument("--logs", type=Path, required=True)
    args = parser.parse_args()
    check_config(f"localhost/imcluster/gateway:{args.version}", "/opt/venv/bin/im-gateway",
                 {"8080/tcp", "9100/tcp"})
    check_config(f"localhost/imcluster/logic:{args.version}", "/opt/venv/bin/im-logic", {"50051/tcp", "9100/tcp"})
    check_config(f"localhost/imcluster/operator:{args.version}", "/opt/venv/bin/im-operator", {"8080/tcp"})
    print("   image config: exec-form entrypoints, user 10001:10001, STOPSIGNAL SIGTERM, ports, OCI labels")
    with isolated_backends() as backends:
        run_cluster(args.version, args.logs, backends)
    check_operator(args.version, args.logs)


if __name__ == "__main__":
    main()
