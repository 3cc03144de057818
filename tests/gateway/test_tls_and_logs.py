"""TLS on the client port (https and wss with a throwaway certificate) and the logs a real server writes."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import itertools
import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from websockets.asyncio.client import connect

from im.client import ChatConnection, HttpClient
from tests.support.processes import BIN

pytestmark = pytest.mark.integration

_emails = itertools.count()


def throwaway_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "imcluster test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "tls.crt", directory / "tls.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def https_json(url: str, context: ssl.SSLContext, body: bytes | None = None) -> Any:
    request = urllib.request.Request(url, data=body, method="POST" if body else "GET")
    with urllib.request.urlopen(request, timeout=10, context=context) as response:
        return json.loads(response.read())


async def test_the_client_port_serves_https_and_wss_with_the_configured_certificate(
    server_factory: Any, tmp_path: Path,
) -> None:
    cert_file, key_file = throwaway_certificate(tmp_path)
    server = server_factory("--tls-cert-file", str(cert_file), "--tls-key-file", str(key_file))
    context = ssl.create_default_context(cafile=str(cert_file))
    base = f"https://127.0.0.1:{server.port}"
    assert await asyncio.to_thread(https_json, f"{base}/healthz", context) == {"status": "ok"}
    email = f"tls{next(_emails)}@example.test"
    await asyncio.to_thread(https_json, f"{base}/api/v1/register", context,
                            json.dumps({"email": email, "password": "correct horse", "nickname": "t"}).encode())
    login = await asyncio.to_thread(https_json, f"{base}/api/v1/login", context,
                                    json.dumps({"email": email, "password": "correct horse"}).encode())
    async with connect(f"wss://127.0.0.1:{server.port}/ws?token={login['token']}", ssl=context) as ws:
        await ws.send('{"type":"ping"}')
        assert json.loads(await ws.recv()) == {"type": "pong"}
    with pytest.raises(urllib.error.URLError) as untrusted:
        await asyncio.to_thread(https_json, f"{base}/healthz", ssl.create_default_context())
    assert isinstance(untrusted.value.reason, ssl.SSLCertVerificationError)


async def test_a_certificate_that_does_not_load_stops_the_start_naming_the_setting(tmp_path: Path) -> None:
    (tmp_path / "bad.crt").write_text("not a certificate")
    process = await asyncio.create_subprocess_exec(
        str(BIN / "im"), "serve", "--port", "0", "--data-dir", str(tmp_path / "data"),
        "--tls-cert-file", str(tmp_path / "bad.crt"), "--tls-key-file", str(tmp_path / "bad.crt"),
        stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode != 0
    assert b"IM_TLS_CERT_FILE" in stderr and b"Traceback" not in stderr


async def test_json_logs_carry_one_access_line_per_request_and_session_and_never_a_secret(
    server_factory: Any,
) -> None:
    server = server_factory("--log-format", "json")
    http = HttpClient(server.url)
    password = "a password that must not be logged"
    ann = await http.signup(f"log{next(_emails)}@example.test", password)
    bob = await http.signup(f"log{next(_emails)}@example.test", password)
    a = await ChatConnection.open(http.ws_url, ann.token)
    await a.send("c1", "hi", to=bob.user_id)
    await a.expect("ack")
    await a.close()
    lines: list[dict[str, Any]] = []
    for _ in range(400):
        lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
        if any(line.get("event") == "websocket_closed" for line in lines):
            break
        await asyncio.sleep(0.05)
    assert lines and all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    access = [line for line in lines if line["logger"] == "im.access"]
    requests = [(line["method"], line["path"], line["status"]) for line in access if "method" in line]
    assert ("POST", "/api/v1/register", 201) in requests and ("POST", "/api/v1/login", 200) in requests
    assert ("GET", "/ws", 101) in requests
    closed = [line for line in access if line.get("event") == "websocket_closed"]
    assert len(closed) == 1
    session = closed[0]
    assert session["user_id"] == ann.user_id and session["close_code"] == 1000
    assert session["frames_in"] == 1 and session["frames_out"] == 1 and session["duration_s"] >= 0
    log = server.log()
    assert ann.token not in log and password not in log
