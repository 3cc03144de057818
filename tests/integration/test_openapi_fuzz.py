"""schemathesis against a real `im serve`: generated requests (valid and invalid) for every operation
of openapi.json, checked for 5xx, undocumented statuses and content types, and bodies that break the
schema. Bounded: a fixed seed and a few dozen examples per operation, on a server of its own."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from im.client import HttpClient
from tests.support.contracts import OPENAPI
from tests.support.processes import BIN

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
HOOKS = {"SCHEMATHESIS_HOOKS": "tests.integration.schemathesis_hooks", "PYTHONPATH": str(ROOT)}


async def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_document(
    standalone_server: Any, tmp_path: Path,
) -> None:
    token = (await HttpClient(standalone_server.url).signup("fuzz@example.com")).token
    run = subprocess.run(
        [str(BIN / "st"), "run", str(OPENAPI), "--url", standalone_server.url,
         "--header", f"Authorization: Bearer {token}",
         "--checks", "all",
         # A 404 for a missing *user* in a body (POST .../members) reads to it as "the group just
         # created is gone"; the document says which is which, the check cannot.
         "--exclude-checks", "ensure_resource_availability",
         # An HTTP fuzzer cannot do a WebSocket handshake: every request it makes to /ws is refused.
         "--exclude-path", "/ws",
         "--max-examples", "20", "--seed", "12", "--continue-on-failure", "--no-color",
         "--request-timeout", "10"],
        # The tmp dir keeps schemathesis's crash cache out of the repo.
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env={**os.environ, **HOOKS},
    )
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:]
