"""``python -m bench.lastused``: what access-key last-use tracking costs the auth path
(docs/api.md#access-key-last-used).

Runs ``bench.run`` (auth of one key, ``auth1``, and of the 200 seeded keys, ``auth``) with
``ACCESSKEY_LAST_USED_INTERVAL`` at 60 s and at 0 (tracking off), alternating, ``--rounds``
times each; prints every run's p50/p99 and throughput, the echo baseline of the same run (the
noise floor of the machine) and the daemon's ``last_used_write`` counters: with tracking on,
one ``written`` per key and interval however many authentications. Run it alone on the
machine (``flock -x /tmp/cm-quiet.lock python -m bench.lastused``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from typing import Any

from bench.env import BIN

ON, OFF = 60, 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.lastused", description=__doc__)
    p.add_argument("--duration", type=float, default=8.0, help="seconds per scenario")
    p.add_argument("--inflight", type=int, default=32)
    p.add_argument("--rounds", type=int, default=2, help="runs with tracking on and off each")
    p.add_argument("--seed-count", type=int, default=200)
    p.add_argument("--out", default="", help="also write every run's results (JSON) here")
    return p.parse_args(argv)


def one_run(interval: int, args: argparse.Namespace) -> dict[str, Any]:
    daemon = (
        f"{BIN / 'customer-manager'} --agent_check off --prefetch {{prefetch}}"
        f" --accesskey_last_used_interval {interval}"
    )
    cmd = [
        sys.executable,
        "-m",
        "bench.run",
        "--scenarios",
        "auth1,auth",
        "--sweep",
        "",
        "--latency-scenarios",
        "",
        "--agent-scenarios",
        "",
        "--results",
        "",
        "--duration",
        str(args.duration),
        "--inflight",
        str(args.inflight),
        "--seed-count",
        str(args.seed_count),
        "--daemon-cmd",
        daemon,
    ]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def row(interval: int, run: dict[str, Any]) -> list[str]:
    out = [f"{'on (60 s)' if interval else 'off (0)':<10}"]
    for name in ("auth1", "auth"):
        r = run["scenarios"][name]
        out.append(
            f"{name}: p50 {r['p50_ms']:6.2f} ms p99 {r['p99_ms']:6.2f} ms"
            f" {r['throughput_rps']:7.1f} req/s (echo p50 {_echo_p50(run):.2f} ms)"
        )
    counters = run.get("daemon_counters", {})
    writes = {k.split('result="')[1].rstrip('"}'): int(v) for k, v in counters.items()}
    out.append(f"writes {writes}")
    return out


def _echo_p50(run: dict[str, Any]) -> float:
    return statistics.median(e["p50_ms"] for e in run["echo"])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    runs: dict[int, list[dict[str, Any]]] = {ON: [], OFF: []}
    for _ in range(args.rounds):
        for interval in (ON, OFF):
            run = one_run(interval, args)
            runs[interval].append(run)
            print(" | ".join(row(interval, run)), flush=True)
    print("median over the runs: p50 (ms), and p50 / the same run's echo p50 (the machine's")
    print("noise moves both alike):")
    for name in ("auth1", "auth"):
        on, off = _median(runs[ON], name), _median(runs[OFF], name)
        on_r, off_r = _median(runs[ON], name, relative=True), _median(runs[OFF], name, True)
        spread = [r["scenarios"][name]["p50_ms"] for r in runs[ON] + runs[OFF]]
        print(
            f"  {name:<5} tracking on {on:.2f} ({on_r:.2f} x echo), off {off:.2f}"
            f" ({off_r:.2f} x echo); difference {on - off:+.2f} ms, {on_r - off_r:+.2f} x"
            f" (every run: {min(spread):.2f} to {max(spread):.2f} ms)"
        )
    if args.out:
        with open(args.out, "w") as out:
            json.dump({"on": runs[ON], "off": runs[OFF]}, out, indent=1)
    return 0


def _median(runs: list[dict[str, Any]], name: str, relative: bool = False) -> float:
    return statistics.median(
        r["scenarios"][name]["p50_ms"] / (_echo_p50(r) if relative else 1.0) for r in runs
    )


if __name__ == "__main__":
    sys.exit(main())
