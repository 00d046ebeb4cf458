"""Targets, machine facts and ``bench/RESULTS.md``.

The report is regenerated on every run; a hand-written ``## Profile`` section (and anything
after it) in the existing file is kept.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.scenarios import DESCRIPTIONS, floor_base

MIB = 1024.0


def machine_info() -> dict[str, str]:
    cpu = "?"
    mem = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / MIB / MIB:.1f} GiB"
    except OSError:
        pass
    versions = {}
    for dist in ("pika", "pykka", "msgspec", "mysql-connector-python", "redis"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "-"
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "libraries": ", ".join(f"{k} {v}" for k, v in versions.items()),
    }


def targets(res: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target (issue 17) with the measured value and pass/fail (None: not measured)."""
    sc = res.get("scenarios", {})
    rows: list[dict[str, Any]] = []

    def row(target: str, value: float | None, ok: bool | None) -> None:
        rows.append({"target": target, "value": value, "ok": ok})

    def ratio(name: str, goal: float, what: str = "") -> None:
        value = sc[name]["ratio_to_echo"] if name in sc else None
        row(
            f"{name} throughput ≥ {goal} × echo at {res['meta']['inflight']} in flight{what}",
            value,
            None if value is None else value >= goal,
        )

    ratio("get", 0.85)
    ratio("auth", 0.8)
    ratio("create", 0.5, " (agent check off)")
    ratio("create_agent", 0.45, " (agent check required)")
    for name in ("get", "auth"):
        at1 = [r for r in res.get("latency", []) if r["scenario"] == name and r["inflight"] == 1]
        added = at1[0]["added_p50_ms"] if at1 else None
        row(
            f"{name}: service-added p50 at 1 in flight ≤ 0.4 ms",
            added,
            None if added is None else added <= 0.4,
        )
    reads = [
        r["p99_ms"]
        for r in [*sc.values(), *res.get("sweep", []), *res.get("latency", [])]
        if r["scenario"] in ("get", "auth") and r["inflight"] == 32
    ]
    worst = max(reads) if reads else None
    row("reads p99 at 32 in flight < 50 ms", worst, None if worst is None else worst < 50)
    peak = res.get("memory", {}).get("peak_hwm_mib")
    row("daemon RSS ≤ 50 MB under load (VmHWM, MiB)", peak, None if peak is None else peak <= 50)
    start = res.get("startup_s")
    row("start-up to first reply ≤ 2 s", start, None if start is None else start <= 2)
    return rows


def _latency_table(rows: list[dict[str, Any]]) -> list[str]:
    out = [
        "| scenario | in flight | p50 ms | echo p50 ms | added p50 ms | p99 ms | echo p99 ms "
        "| req/s | echo req/s | × echo | server CPU ms/req |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(rows, key=lambda r: (r["scenario"], r["inflight"])):
        out.append(
            f"| {r['scenario']} | {r['inflight']} | {r['p50_ms']:.2f} | "
            f"{r.get('echo_p50_ms', 0):.2f} | **{r.get('added_p50_ms', 0):+.2f}** | "
            f"{r['p99_ms']:.2f} | {r.get('echo_p99_ms', 0):.2f} | {r['throughput_rps']:.0f} | "
            f"{r.get('echo_rps', 0):.0f} | {r.get('ratio_to_echo', 0):.2f} | "
            f"{r.get('server_cpu_ms_per_req', 0):.3f} |"
        )
    return out


def _mark(ok: bool | None) -> str:
    return "n/a" if ok is None else ("✅ pass" if ok else "❌ miss")


def _load_table(rows: list[dict[str, Any]]) -> list[str]:
    out = [
        "| scenario | in flight | req/s | echo req/s | × echo | p50 ms | p99 ms | echo p99 ms "
        "| max ms | non-200 | server CPU ms/req | server CPU % | machine busy % "
        "| daemon peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        out.append(
            f"| {r['scenario']} | {r['inflight']} | {r['throughput_rps']:.0f} | "
            f"{r.get('echo_rps', 0):.0f} | {r.get('ratio_to_echo', 0):.2f} | {r['p50_ms']:.2f} | "
            f"{r['p99_ms']:.2f} | {r.get('echo_p99_ms', 0):.2f} | {r['max_ms']:.1f} | "
            f"{r['non_200']} | {r.get('server_cpu_ms_per_req', 0):.3f} | "
            f"{r.get('server_cpu_pct', 0):.0f} | {r.get('machine_busy_pct', 0):.0f} | "
            f"{r.get('rss_peak_mib', 0):.1f} |"
        )
    return out


def _daemon_row(res: dict[str, Any], floor_row: dict[str, Any]) -> dict[str, Any]:
    """The daemon's run of the scenario a floor run mirrors, at the same in-flight count."""
    name = floor_base(floor_row["scenario"])
    runs = [*res.get("scenarios", {}).values(), *res.get("latency", [])]
    same = [r for r in runs if r["scenario"] == name and r["inflight"] == floor_row["inflight"]]
    return same[0] if same else {}


def _floor_table(res: dict[str, Any]) -> list[str]:
    out = [
        "| scenario | in flight | req/s | echo req/s | × echo | p50 ms | added p50 ms | p99 ms "
        "| non-200 | floor CPU ms/req | floor CPU % | daemon × echo | daemon CPU ms/req "
        "| daemon added p50 ms | broker / MySQL / Redis CPU ms/req, floor | same, daemon |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in [*res.get("floor", []), *res.get("floor_latency", [])]:
        d = _daemon_row(res, r)
        daemon = (
            f"{d.get('ratio_to_echo', 0):.2f} | {d.get('server_cpu_ms_per_req', 0):.3f} | "
            f"{d.get('added_p50_ms', 0):+.2f}"
            if d
            else "- | - | -"
        )
        out.append(
            f"| {r['scenario']} | {r['inflight']} | {r['throughput_rps']:.0f} | "
            f"{r.get('echo_rps', 0):.0f} | {r.get('ratio_to_echo', 0):.2f} | {r['p50_ms']:.2f} | "
            f"{r.get('added_p50_ms', 0):+.2f} | {r['p99_ms']:.2f} | {r['non_200']} | "
            f"{r.get('server_cpu_ms_per_req', 0):.3f} | {r.get('server_cpu_pct', 0):.0f} | "
            f"{daemon} | {_peers(r)} | {_peers(d)} |"
        )
    return out


def _peers(run: dict[str, Any]) -> str:
    cpu = run.get("peer_cpu_ms_per_req", {})
    return " / ".join(f"{cpu[k]:.3f}" if k in cpu else "-" for k in ("broker", "mysql", "redis"))


FLOOR_NOTE = (
    "`bench/floor.py`: one single-threaded pika process doing only each operation's I/O and "
    "encoding (get: one Redis GET; auth: sha256 + the get_indirect script; create: one MySQL "
    "transaction of the daemon's three INSERTs, one Redis SET, the event with publisher "
    "confirms, a batched outbox DELETE after them; create_agent: create after an async RPC to "
    "the fake agent-manager). No suffix: one request at a time, AMQP exactly as the echo "
    "server; `_batch`: one read's requests together (one Redis pipeline, a transaction per "
    "create, replies through the channel core with joined sends); `_group`: `_batch` with one "
    "transaction per read's creates; `_rows`: `_group` with multi-row INSERTs (one per "
    "table). The daemon columns are its run at the same in-flight count."
)


def render(res: dict[str, Any]) -> str:
    meta, mem = res["meta"], res.get("memory", {})
    lines = [
        "# customer-manager benchmark results",
        "",
        f"Generated by `{meta['command']}` on {meta['date']} (total {meta['elapsed_s']} s).",
        "",
        "## Targets",
        "",
        "| target | measured | result |",
        "|---|---:|---|",
    ]
    lines += [
        f"| {t['target']} | {t['value'] if t['value'] is not None else '-'} | {_mark(t['ok'])} |"
        for t in res["targets"]
    ]
    lines += ["", f"## Scenarios ({meta['duration_s']} s each, {meta['inflight']} in flight)", ""]
    lines += _load_table(list(res.get("scenarios", {}).values()))
    if res.get("latency"):
        lines += [
            "",
            f"## Added latency per in-flight depth ({meta['sweep_duration_s']} s each, "
            f"prefetch {meta['prefetch']})",
            "",
            "`added p50` = the scenario's p50 minus the mean p50 of the echo runs right before "
            "and after it (same depth, alternating runs).",
            "",
        ]
        lines += _latency_table(res["latency"])
    if res.get("sweep"):
        lines += [
            "",
            f"## In-flight sweep (`get`, {meta['sweep_duration_s']} s each, prefetch "
            f"{meta['prefetch']})",
            "",
        ]
        lines += _load_table(res["sweep"])
    if res.get("floor"):
        lines += ["", "## Floor (the same requests against bench/floor.py)", "", FLOOR_NOTE, ""]
        lines += _floor_table(res)
    if "profiled_runs" in res:
        lines += ["", "Runs under py-spy (not used for the targets):", ""]
        lines += _load_table(res["profiled_runs"])
    lines += [
        "",
        "## Memory and start-up",
        "",
        f"* start-up, spawn to first 200 reply: **{res.get('startup_s')} s**",
        f"* idle RSS after start-up: {mem.get('idle_start_mib')} MiB; "
        f"idle after the load: {mem.get('idle_after_mib')} MiB",
        f"* highest sampled RSS under load: {mem.get('peak_sampled_mib')} MiB; "
        f"VmHWM (peak over the process life): **{mem.get('peak_hwm_mib')} MiB**",
        f"* SIGTERM to exit: {res.get('stop_s')} s, exit code {res.get('exit_code')}",
    ]
    agent = res.get("agent_daemon")
    if agent:
        lines += [
            f"* agent-check daemon (`create_agent`): start-up {agent.get('startup_s')} s, "
            f"VmHWM {agent.get('peak_hwm_mib')} MiB, SIGTERM to exit {agent.get('stop_s')} s, "
            f"exit code {agent.get('exit_code')}",
        ]
    lines += [""]
    lines += _method(meta)
    return "\n".join(lines) + "\n"


def _method(meta: dict[str, Any]) -> list[str]:
    m = meta["machine"]
    scen = [f"  * `{k}`: {v}" for k, v in DESCRIPTIONS.items()]
    return [
        "## How these figures were produced",
        "",
        f"* Command: `{meta['command']}`; daemon: `{meta['daemon_cmd']}`; for "
        f"`create_agent` a second daemon: `{meta.get('agent_daemon_cmd', '-')}`.",
        f"* Fresh MySQL database `cm_bench_<run>` (migrated with `{meta['migrate_cmd']}`, "
        "dropped at the end), Redis DB 14 (flushed before and after), a temporary RabbitMQ "
        "vhost (deleted at the end). The first daemon runs with `--agent_check off`; the "
        "second (`create_agent`) with `--agent_check required` against a fake agent-manager "
        "(`bench/echo.py`: the echo server on agent-manager's queue, answering `[]` at once).",
        f"* Seeded through RPC: {meta['seed_count']} customers and one access key each.",
        "* Load: one closed-loop generator in its own spawned process (one pika "
        "BlockingConnection, direct reply-to, correlation ids); each reply triggers the next "
        f"request, so exactly N requests are in flight. {meta['warmup_s']} s warm-up is "
        "discarded; throughput = replies in the window / window; latency = publish to reply.",
        "* Baseline: a bare pika echo server in its own process on its own queue (manual ack "
        "after the reply, same prefetch, fixed ~400 byte reply, no storage); `× echo` is the "
        "scenario's throughput over the mean echo throughput of the echo runs right before "
        "and right after it, at the same in-flight count and duration (echo, scenario, echo, "
        "scenario, ...: background load and drift on the shared machine affect both alike).",
        "* CPU: `/proc/<pid>/stat` utime+stime of the server (daemon or echo) over the run "
        "(warm-up included) per request sent, and `/proc/stat` busy share of all cores.",
        "* Memory: `/proc/<pid>/status` of the daemon (VmRSS sampled every 0.2 s, VmHWM).",
        "* Scenarios:",
        *scen,
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory']}, Linux {m['kernel']}, "
        f"Python {m['python']}; {m['libraries']}; RabbitMQ {meta['rabbitmq']}, "
        f"MariaDB/MySQL {meta['mysql']}, Redis {meta['redis']}. Broker, database, Redis, "
        "daemon and load generator all share the same cores, so absolute figures are low "
        "and the ratios are the meaningful numbers.",
        "",
    ]


def write(path: Path, res: dict[str, Any]) -> None:
    kept = ""
    if path.exists():
        old = path.read_text()
        at = old.find("\n## Profile")
        kept = old[at + 1 :] if at >= 0 else ""
    path.write_text(render(res) + ("\n" + kept if kept else ""))
