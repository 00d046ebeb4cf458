"""The ``pykka-waking-inbox`` trick's figure: latency of a proxy ask to a pump actor.

``python -m bench.waking_inbox [AMQP_URL]`` starts a ``PumpActor`` with the publisher's 0.1 s
slice on the broker, asks it 200 times (13 ms apart, so asks land anywhere in a slice), with
the waking inbox and with pykka's own, and prints median, p90 and max in ms.
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any

from customer_manager.actors.amqp.link import PumpActor
from customer_manager.tricks import pykka_inbox

ASKS = 200


class Probe(PumpActor):
    slice_seconds = 0.1

    def on_connect(self, connection: Any) -> None:
        connection.channel()

    def ping(self) -> bool:
        return True


def measure(url: str) -> list[float]:
    ref = Probe.start(url, "bench-waking-inbox")
    try:
        probe: Any = ref.proxy()
        probe.ping().get(timeout=5)
        latencies = []
        for _ in range(ASKS):
            started = time.perf_counter()
            probe.ping().get(timeout=5)
            latencies.append((time.perf_counter() - started) * 1000)
            time.sleep(0.013)
    finally:
        ref.stop()
    return sorted(latencies)


def main() -> None:
    url = sys.argv[1] if len(sys.argv) > 1 else "amqp://guest:guest@127.0.0.1:5672/%2F"
    for label, on in (("waking inbox", True), ("pykka's inbox", False), ("waking inbox", True)):
        (pykka_inbox.enable if on else pykka_inbox.disable)()
        ms = measure(url)
        print(
            f"{label:>14}: median {statistics.median(ms):.2f} ms, "
            f"p90 {ms[int(len(ms) * 0.9)]:.2f} ms, max {ms[-1]:.2f} ms"
        )


if __name__ == "__main__":
    main()
