"""The gRPC TLS settings gateway and logic share: each names its own certificate and the CA of its peer.

Laid out like a Kubernetes TLS Secret (`tls.crt`, `tls.key`, `ca.crt`). On logic, a certificate turns
TLS on and a CA makes it mutual (gateways must present a certificate that CA signed). On a gateway, a
CA turns TLS on (logic's certificate is checked against it) and a certificate is presented for mTLS.
"""

from __future__ import annotations

from im.config import setting

__all__ = ["GRPC_TLS_CA_FILE", "GRPC_TLS_CERT_FILE", "GRPC_TLS_KEY_FILE"]

GRPC_TLS_CERT_FILE = setting("IM_GRPC_TLS_CERT_FILE", "PEM certificate this process shows its gRPC peer")
GRPC_TLS_KEY_FILE = setting("IM_GRPC_TLS_KEY_FILE", "PEM private key of IM_GRPC_TLS_CERT_FILE")
GRPC_TLS_CA_FILE = setting("IM_GRPC_TLS_CA_FILE", "PEM CA bundle that verifies the gRPC peer's certificate")
