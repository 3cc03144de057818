"""HTTP/1.1 requests from bytes, without I/O: httptools (llhttp) parses, this layer checks and builds.

llhttp does the framing and refuses what a strict parser must: two `Content-Length`s, `Content-Length`
with `Transfer-Encoding`, unknown transfer codings, bare CR or LF, control bytes, obs-fold, bad
versions. On top of it this layer enforces what RFC 9112 leaves to the server and the gateway's own
limits: exactly one `Host` in HTTP/1.1, only HTTP/1.0 and 1.1, no `Transfer-Encoding` in 1.0, the head
and body sizes, `Expect`, and keep-alive from the `Connection` tokens. A `RequestReader` is fed the
bytes of one connection and returns what happened as events; after a `Rejected` or an `Upgrade` it
reads nothing more.
"""

from __future__ import annotations

import enum
import ipaddress
import time
from dataclasses import dataclass
from typing import NoReturn
from urllib.parse import parse_qsl

import httptools

from im.gateway.errors import ExpectationFailed, HeadTooLarge, VersionNotSupported
from im.gateway.http import Request
from im.gateway.settings import EdgeLimits, Network
from im.protocol.errors import BadRequest, ImError, TooLarge

__all__ = [
    "ContinueExpected", "Event", "Phase", "Rejected", "RequestReader", "RequestReady", "Upgrade",
    "client_address", "is_trusted",
]

_HEADER_LINE_OVERHEAD = 4
"""`: ` and CRLF around each header's name and value."""


@dataclass(frozen=True, slots=True)
class RequestReady:
    request: Request


@dataclass(frozen=True, slots=True)
class ContinueExpected:
    """The client waits for `100 Continue` before it sends the body (RFC 9110 10.1.1)."""


@dataclass(frozen=True, slots=True)
class Upgrade:
    """A request that asked to switch protocols; the bytes after its head belong to the new protocol."""

    request: Request
    trailing: bytes


@dataclass(frozen=True, slots=True)
class Rejected:
    error: ImError


Event = RequestReady | ContinueExpected | Upgrade | Rejected


class Phase(enum.Enum):
    IDLE = "idle"
    """Between requests: nothing of the next one has arrived."""
    HEAD = "head"
    BODY = "body"
    DONE = "done"
    """Rejected or upgraded: the reader takes no more bytes."""


class _Refused(Exception):
    """Raised inside a parser callback to stop parsing; the reason is kept on the reader."""


class RequestReader:
    """The requests of one connection: `feed()` bytes as they arrive, get events back."""

    __slots__ = (
        "_limits", "_peer", "_trusted", "_parser", "phase", "_url", "_headers", "_head_bytes", "_partial",
        "_body", "_request", "_upgrading", "_events", "_refusal",
    )

    def __init__(self, limits: EdgeLimits, peer: str) -> None:
        self._limits = limits
        self._peer = peer
        self._trusted = limits.trusted_proxies
        self._parser = httptools.HttpRequestParser(self)
        self.phase = Phase.IDLE
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._head_bytes = 0
        self._partial = 0
        self._body = bytearray()
        self._request: Request | None = None
        self._upgrading = False
        self._events: list[Event] = []
        self._refusal: ImError | None = None

    def feed(self, data: bytes) -> list[Event]:
        """Parse `data`: the requests it completes, and what else happened."""
        if self.phase is Phase.DONE:
            return []
        events = self._events = []
        continuing_head = self.phase is Phase.HEAD
        accounted = self._head_bytes
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            request = self._request
            assert request is not None
            self.phase = Phase.DONE
            events.append(Upgrade(request, data[upgrade.args[0]:]))
            return events
        except httptools.HttpParserError as error:
            self.phase = Phase.DONE
            events.append(Rejected(self._refusal or _parser_refusal(error)))
            return events
        if continuing_head and self.phase is Phase.HEAD:
            # A line still arriving is buffered inside the parser, which reports it only once
            # complete: count the bytes of every read that carried it, so the limit holds per read.
            self._partial = max(0, self._partial + len(data) - (self._head_bytes - accounted))
            if self._head_bytes + self._partial > self._limits.max_head_bytes:
                self.phase = Phase.DONE
                events.append(Rejected(_head_too_large(self._limits)))
        return events

    # -- httptools callbacks --------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.phase = Phase.HEAD
        self._url = b""
        self._headers = []
        self._head_bytes = 0
        self._partial = 0
        self._body = bytearray()
        self._request = None

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._count_head(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))
        self._partial = 0
        self._head_bytes += len(name) + len(value) + _HEADER_LINE_OVERHEAD
        if self._head_bytes > self._limits.max_head_bytes:
            self._refuse(_head_too_large(self._limits))

    def on_headers_complete(self) -> None:
        self.phase = Phase.BODY
        try:
            self._request = request = self._build()
        except ImError as error:
            self._refuse(error)
        self._upgrading = self._parser.should_upgrade()
        if self._upgrading and ("content-length" in request.headers or "transfer-encoding" in request.headers):
            self._refuse(BadRequest("a request that asks to switch protocols cannot have a body"))
        expect = request.headers.get("expect")
        if expect is not None:
            if expect.lower() != "100-continue":
                self._refuse(ExpectationFailed(f"cannot meet the expectation {expect[:40]!r}"))
            if request.version == "1.1" and not self._upgrading and _has_body(request):
                self._events.append(ContinueExpected())

    def on_body(self, body: bytes) -> None:
        self._body += body
        if len(self._body) > self._limits.max_body_bytes:
            self._refuse(_body_too_large(self._limits))

    def on_message_complete(self) -> None:
        request = self._request
        assert request is not None
        request.body = bytes(self._body)
        self.phase = Phase.IDLE
        if not self._upgrading:
            self._events.append(RequestReady(request))

    # -- checks ---------------------------------------------------------------------------------

    def _count_head(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > self._limits.max_head_bytes:
            self._refuse(_head_too_large(self._limits))

    def _refuse(self, error: ImError) -> NoReturn:
        self._refusal = error
        raise _Refused(error.message)

    def _build(self) -> Request:
        version = self._parser.get_http_version()
        if version not in ("1.0", "1.1"):
            raise VersionNotSupported("only HTTP/1.0 and HTTP/1.1 are served")
        headers: dict[str, str] = {}
        raw_headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in self._headers]
        hosts = 0
        for name, value in raw_headers:
            lower = name.lower()
            if lower in headers:
                headers[lower] += ", " + value
            else:
                headers[lower] = value
            if lower == "host":
                hosts += 1
        if hosts > 1 or (hosts == 0 and version == "1.1"):
            raise BadRequest("an HTTP/1.1 request needs exactly one Host header")
        if version == "1.0" and "transfer-encoding" in headers:
            raise BadRequest("Transfer-Encoding is not allowed in HTTP/1.0")
        length = headers.get("content-length")
        if length is not None and int(length) > self._limits.max_body_bytes:
            # llhttp has already checked that it is one run of ASCII digits.
            raise _body_too_large(self._limits)
        path, query = _split_target(self._url)
        return Request(
            method=self._parser.get_method().decode("ascii"), path=path, query=query, version=version,
            headers=headers, raw_headers=raw_headers, keep_alive=_keep_alive(version, headers),
            client_address=client_address(self._peer, headers.get("x-forwarded-for"), self._trusted),
            started=time.monotonic(),
        )


def _split_target(url: bytes) -> tuple[str, dict[str, str]]:
    if url == b"*":
        return "*", {}
    try:
        parsed = httptools.parse_url(url)
    except httptools.HttpParserInvalidURLError:
        raise BadRequest("malformed request target") from None
    try:
        path = (parsed.path or b"/").decode("ascii")
    except UnicodeDecodeError:
        raise BadRequest("malformed request target") from None
    if not path.startswith("/"):
        raise BadRequest("malformed request target")
    query: dict[str, str] = {}
    if parsed.query:
        try:
            query = dict(parse_qsl(parsed.query.decode("ascii"), keep_blank_values=True, errors="strict"))
        except (UnicodeDecodeError, ValueError):
            raise BadRequest("malformed query string") from None
    return path, query


def _keep_alive(version: str, headers: dict[str, str]) -> bool:
    """RFC 9112 9.3: `Connection` is a list of tokens; `close` wins, 1.0 needs `keep-alive`."""
    tokens = {token.strip().lower() for token in headers.get("connection", "").split(",")}
    if "close" in tokens:
        return False
    return version == "1.1" or "keep-alive" in tokens


def _has_body(request: Request) -> bool:
    return request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers


def client_address(peer: str, forwarded_for: str | None, trusted: tuple[Network, ...]) -> str:
    """The client behind `peer`: the right-most `X-Forwarded-For` hop that is not a trusted proxy."""
    if not trusted or forwarded_for is None or not is_trusted(peer, trusted):
        return peer
    for hop in reversed(forwarded_for.split(",")):
        hop = hop.strip()
        if not is_trusted(hop, trusted):
            return hop if _is_address(hop) else peer
    return peer


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def is_trusted(address: str, trusted: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def _head_too_large(limits: EdgeLimits) -> HeadTooLarge:
    return HeadTooLarge(f"the request head is larger than {limits.max_head_bytes} bytes")


def _body_too_large(limits: EdgeLimits) -> TooLarge:
    return TooLarge(f"the request body is larger than {limits.max_body_bytes} bytes")


def _parser_refusal(error: httptools.HttpParserError) -> ImError:
    reason = str(error) or "malformed request"
    if "HTTP version" in reason:
        return VersionNotSupported("only HTTP/1.0 and HTTP/1.1 are served")
    return BadRequest(f"malformed request: {reason}")
