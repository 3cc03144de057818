"""Micro-benchmarks of the bus envelopes (run: .venv/bin/python benchmarks/envelopes.py).

Every message is an `Uplink` built by its gateway and decoded by logic, then an `Ack` and a `Delivery`
built by logic and decoded by a gateway. Best of 7 repeats, so a busy machine shows less.
"""

from __future__ import annotations

import timeit
from collections.abc import Callable

from im.contracts.envelopes import (
    Ack,
    Delivery,
    Downlink,
    Uplink,
    decode_downlink,
    decode_uplinks,
    encode_downlink,
    encode_uplinks,
)
from im.contracts.records import Message


def best(work: Callable[[], object], number: int) -> float:
    return min(timeit.repeat(work, number=number, repeat=7)) / number


def main() -> None:
    uplinks = [Uplink(i, f"cid-{i}", i + 1, None, "x" * 64, "gw-1", 1000 + i, 1767225600.25) for i in range(50)]
    body = encode_uplinks(uplinks)
    message = Message(1, 2, 3, None, "x" * 64, "cid", 1767225600250)
    downlink = Downlink("gw-1", acks=[Ack(i, f"cid-{i}", i, i, 5) for i in range(50)],
                        deliveries=[Delivery(message, [(3, i)], 1.5, None) for i in range(50)])
    down_body = encode_downlink(downlink)
    build = best(lambda: Uplink(1, "cid", 2, None, "x", "gw-1", 3, 1.5), 20000)
    print(f"build one Uplink: {build * 1e9:6.0f} ns")
    print(f"encode 50 uplinks: {best(lambda: encode_uplinks(uplinks), 500) * 1e6:6.1f} us, "
          f"decode (checked): {best(lambda: decode_uplinks(body), 500) * 1e6:6.1f} us")
    print(f"encode a downlink of 50 acks + 50 deliveries: "
          f"{best(lambda: encode_downlink(downlink), 500) * 1e6:6.1f} us, "
          f"decode: {best(lambda: decode_downlink(down_body), 500) * 1e6:6.1f} us")


if __name__ == "__main__":
    main()
