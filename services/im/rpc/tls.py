"""gRPC credentials from PEM files, laid out like a Kubernetes TLS Secret (`tls.crt`, `tls.key`, `ca.crt`).

On logic (the server) a certificate turns TLS on and a CA makes it mutual: only gateways that show a
certificate that CA signed get in. On a gateway (the client) a CA turns TLS on, logic's certificate is
checked against it, and a certificate of its own is shown for mutual TLS. The files are read once, when
the process starts (`docs/operations.md`, "gRPC over TLS").
"""

from __future__ import annotations

from pathlib import Path

import grpc

__all__ = ["channel_credentials", "server_credentials"]


def server_credentials(cert_file: Path, key_file: Path, ca_file: Path | None = None) -> grpc.ServerCredentials:
    ca = ca_file.read_bytes() if ca_file is not None else None
    return grpc.ssl_server_credentials(
        [(key_file.read_bytes(), cert_file.read_bytes())], root_certificates=ca, require_client_auth=ca is not None,
    )


def channel_credentials(
    ca_file: Path, cert_file: Path | None = None, key_file: Path | None = None,
) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=ca_file.read_bytes(),
        private_key=key_file.read_bytes() if key_file is not None else None,
        certificate_chain=cert_file.read_bytes() if cert_file is not None else None,
    )
