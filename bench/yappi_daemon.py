"""Run the daemon under yappi (CPU clock, per thread) and write the hottest functions of the
busiest threads to ``YAPPI_OUT`` (default /tmp/cm-yappi.txt) at exit.

    python -m bench.run --scenarios get --sweep '' \\
        --daemon-cmd "python -m bench.yappi_daemon --agent_check off --prefetch {prefetch}"

yappi is in the ``bench`` extra (``pip install -e '.[bench]'``); absolute times are inflated
by the profiler, the shares are what to read.
"""

from __future__ import annotations

import atexit
import os
from typing import Any

import yappi

from customer_manager.tricks import mysql_cext

OUT = os.environ.get("YAPPI_OUT", "/tmp/cm-yappi.txt")


def _dump() -> None:
    yappi.stop()
    threads: Any = sorted(yappi.get_thread_stats(), key=lambda t: -t.ttot)
    with open(OUT, "w") as out:
        total = sum(t.ttot for t in threads)
        out.write(f"all threads cpu {total:.2f} s: ")
        out.write(", ".join(f"{t.id}={t.ttot:.2f}" for t in threads) + "\n")
        for thread in [t for t in threads if t.ttot > 0.018 * total]:
            out.write(f"\n##### thread {thread.id} cpu {thread.ttot:.2f} s\n")
            stats = yappi.get_func_stats(ctx_id=thread.id)
            for order in ("tsub", "ttot"):
                stats.sort(order)
                out.write(f"-- by {order} --\n")
                for f in list(stats)[:25]:
                    out.write(f"{f.tsub:8.3f} {f.ttot:8.3f} {f.ncall:8d}  {f.full_name[-95:]}\n")


def main() -> None:
    mysql_cext.preload()  # as the console script does, before the daemon's imports load ssl
    yappi.set_clock_type("cpu")
    yappi.start(builtins=True)
    atexit.register(_dump)
    from customer_manager.main import main as daemon

    daemon(prog_name="customer-manager")


if __name__ == "__main__":
    main()
