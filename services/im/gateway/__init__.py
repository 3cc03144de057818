"""Gateway: holds client connections (HTTP + WebSocket) and nothing else.

    server            the core: lifecycle, registry, timing wheel, uplink outbox, downlink fan-out
    http_connection   a connection while it speaks HTTP (sees the core as `HttpHost`)
    websocket         a connection after its upgrade (sees the core as `SessionHub`)
    http11            bytes to requests over httptools, no I/O
    http              Request, Response, error_response
    routes            routing on the raw path, HEAD, OPTIONS, CORS, 405
    api, static       the REST API and health endpoints; the web page's files
    settings, errors  what the gateway is told at start; what its edge refuses

Lower modules never import higher ones (an import-linter contract in pyproject.toml keeps it so).
"""
