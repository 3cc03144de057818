"""The TypeScript SDK (sdk/js): built with tsc, its node test suite run against real `im serve`
processes (killed and drained mid-stream), every frame it exchanged checked against frames.json, its
declarations used by a type-checked consumer, and the browser copy equal to the build.

Sets itself up: `npm ci` from the registry the first time (and whenever package-lock.json changes),
a stamp in node_modules makes it a no-op afterwards. Needs node >= 20 and npm (scripts/setup-services).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import orjson
import pytest

from tests.support.contracts import check_frame
from tests.support.processes import BIN

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SDK = ROOT / "sdk" / "js"
BROWSER_COPY = ROOT / "services" / "im" / "web" / "sdk.js"


def run(*argv: str, timeout: float = 300, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, cwd=SDK, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, **(env or {})})
    assert result.returncode == 0, f"{' '.join(argv)} failed:\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def built_sdk() -> Path:
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: scripts/setup-services installs nodejs and npm")
    lock = hashlib.sha1((SDK / "package-lock.json").read_bytes()).hexdigest()[:12]
    stamp = SDK / "node_modules" / f".installed-{lock}"
    if not stamp.exists():
        run("npm", "ci", "--no-audit", "--no-fund")
        stamp.touch()
    run("npx", "--no-install", "tsc", "-p", "tsconfig.json")
    return SDK / "dist"


def test_the_browser_copy_is_the_build_of_the_typescript_source(built_sdk: Path) -> None:
    assert (built_sdk / "index.js").read_text() == BROWSER_COPY.read_text(), (
        "services/im/web/sdk.js is stale: cd sdk/js && npx tsc -p . && cp dist/index.js ../../services/im/web/sdk.js")
    assert (built_sdk / "index.d.ts").exists()
    assert "import " not in BROWSER_COPY.read_text().split("*/", 1)[-1].replace("// ", ""), \
        "the browser loads one module: no imports"


def test_an_application_using_the_declarations_type_checks(built_sdk: Path) -> None:
    run("npx", "--no-install", "tsc", "-p", "test/tsconfig.json")


def test_the_node_suite_passes_against_real_servers_and_every_frame_fits_the_schema(
    built_sdk: Path, tmp_path: Path,
) -> None:
    log = tmp_path / "frames.jsonl"
    result = run("node", "--experimental-websocket", "--test", "test/", timeout=400,
                 env={"IM_BIN": str(BIN / "im"), "IM_FRAME_LOG": str(log)})
    assert "# fail 0" in result.stdout and "# pass " in result.stdout, result.stdout[-3000:]
    frames = [orjson.loads(line) for line in log.read_bytes().splitlines()]
    for entry in frames:
        check_frame(entry["direction"], entry["frame"])
    sent = {entry["frame"]["type"] for entry in frames if entry["direction"] == "out"}
    received = {entry["frame"]["type"] for entry in frames if entry["direction"] == "in"}
    frame_types = {"send", "sync", "edit", "recall", "read", "typing", "presence"}
    assert frame_types <= sent <= frame_types | {"ping"}, sent
    assert {"ack", "msg", "sync", "reconnect", "edit", "recall", "read", "typing", "presence"} <= received, received
