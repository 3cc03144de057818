"""The JWT signing key, generated once when `spec.auth.jwtSecretRef` is absent."""

from __future__ import annotations

import base64

from im_operator.builders.common import Manifest, watched_metadata
from im_operator.spec import JWT_SECRET_KEY, Json, parse

__all__ = ["build"]


def build(body: Json, secret: str) -> Manifest:
    """`secret` is chosen by the caller (random, once), which keeps this function pure."""
    spec = parse(body)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": watched_metadata(spec, "jwt"),
        "type": "Opaque",
        "data": {JWT_SECRET_KEY: base64.b64encode(secret.encode()).decode()},
    }
