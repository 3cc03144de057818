"""Hooks for the schemathesis run (loaded through SCHEMATHESIS_HOOKS).

JSON Schema counts `2.0` as an integer and schemathesis draws such spellings for integer fields of
OpenAPI 3.1 bodies; the protocol takes ids as JSON integers written without a fraction (docs/protocol.md),
which no JSON Schema keyword can say. The generated bodies are mapped back to that spelling.
"""

from __future__ import annotations

from typing import Any

import schemathesis

EXACT_FLOAT_INTEGERS = 2**53


def _integers_unspelled(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < EXACT_FLOAT_INTEGERS:
        return int(value)
    if isinstance(value, dict):
        return {key: _integers_unspelled(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integers_unspelled(item) for item in value]
    return value


@schemathesis.hook
def map_body(context: schemathesis.HookContext, body: Any) -> Any:
    return _integers_unspelled(body)
