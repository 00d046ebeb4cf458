"""``python -m bench.run``: the whole benchmark in one invocation (``make bench``).

Creates a private vhost, database and Redis DB, starts the daemon, seeds data over RPC,
measures the echo baseline and every scenario, the latency the service adds per in-flight
depth (get and auth at 1, 4, 16, 32), stops the daemon with SIGTERM; then starts a second
daemon with ``--agent_check required`` and a fake agent-manager for ``create_agent``; cleans
up, prints the results as JSON and writes bench/RESULTS.md.

Opt-in, ``--floor-scenarios get,auth,create,create_agent``: the same requests against
``bench/floor.py`` (the least work one Python process must do per request) in each of
``--floor-modes``, alternating with echo runs like the daemon's scenarios (get, auth and
create right after the first daemon, while the cache is warm; create_agent after the second).
All four in all four modes add about 5 minutes; ``--floor-modes seq,batch`` about 3.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

from bench import floor, report
from bench.amqp import REQUEST_QUEUE, RpcClient
from bench.daemon import (
    Daemon,
    RssSampler,
    cpu_seconds,
    free_port,
    machine_busy,
    peer_pids,
)
from bench.echo import ECHO_QUEUE, EchoServer, FakeAgentManager
from bench.env import BIN, BenchEnv, EnvOptions, server_versions
from bench.loadgen import Generator, LoadSpec
from bench.profiling import Profiler
from bench.scenarios import AGENT_SCENARIOS, SCENARIOS, Seed, seed_data

HERE = Path(__file__).resolve().parent
DEFAULT_DAEMON = f"{BIN / 'customer-manager'} --agent_check off --prefetch {{prefetch}}"
AGENT_DAEMON = f"{BIN / 'customer-manager'} --agent_check required --prefetch {{prefetch}}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    p.add_argument("--duration", type=float, default=10.0, help="seconds per scenario")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds discarded per run")
    p.add_argument("--inflight", type=int, default=32, help="requests in flight per scenario")
    p.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma list; '' for none")
    p.add_argument("--sweep", default="", help="in-flight counts for get ('' skips)")
    p.add_argument("--sweep-duration", type=float, default=None, help="default: duration / 2")
    p.add_argument(
        "--latency", default="1,4,16,32", help="in-flight depths of the added-latency table"
    )
    p.add_argument("--latency-scenarios", default="get,auth", help="comma list; '' skips")
    p.add_argument(
        "--agent-scenarios",
        default=",".join(AGENT_SCENARIOS),
        help="run on a second daemon (--agent-daemon-cmd) with a fake agent-manager; '' skips",
    )
    p.add_argument("--agent-daemon-cmd", default=AGENT_DAEMON)
    p.add_argument(
        "--floor-scenarios",
        default="",
        help="comma list of get,auth,create,create_agent: after the daemons, the same requests "
        "against bench/floor.py (the I/O floor); '' (the default) skips",
    )
    p.add_argument(
        "--floor-modes", default="seq,batch,group,rows", help="bench/floor.py --mode values"
    )
    p.add_argument(
        "--floor-latency", default="1", help="in-flight depths of floor get/auth added latency"
    )
    p.add_argument("--prefetch", type=int, default=32, help="daemon and echo prefetch")
    p.add_argument("--seed-count", type=int, default=200, help="customers (+1 key each)")
    p.add_argument(
        "--daemon-cmd",
        default=DEFAULT_DAEMON,
        help="command (exec'd, no shell; {prefetch} is substituted)",
    )
    p.add_argument("--migrate-cmd", default=f"{BIN / 'customer-control'} db migrate")
    p.add_argument("--mysql-dsn", default="root:@tcp(127.0.0.1:3306)/")
    p.add_argument("--redis-address", default="127.0.0.1:6379")
    p.add_argument("--redis-db", type=int, default=14)
    p.add_argument("--amqp", default="amqp://guest:guest@127.0.0.1:5672", help="no vhost part")
    p.add_argument("--vhost", default="", help="existing vhost to use (default: a temporary one)")
    p.add_argument(
        "--profile",
        default="",
        metavar="SCENARIOS",
        help="comma list: after the measured runs, run each once more under py-spy",
    )
    p.add_argument("--profile-dir", default="/tmp", help="writes cm-bench-profile-<name>.txt")
    p.add_argument("--results", default=str(HERE / "RESULTS.md"), help="'' to skip writing")
    p.add_argument("--daemon-log", default="/tmp/cm-bench-daemon.log")
    return p.parse_args(argv)


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


class Bench:
    """One benchmark run; ``res`` collects everything that is printed and reported."""

    def __init__(self, args: argparse.Namespace, env: BenchEnv, gen: Generator) -> None:
        self.args, self.env, self.gen = args, env, gen
        self.sweep_duration = args.sweep_duration or args.duration / 2
        self._last_echo: dict[str, Any] | None = None
        self.res: dict[str, Any] = {"echo": [], "scenarios": {}, "sweep": []}
        self.pid = self.echo_pid = 0
        self.peers = peer_pids()  # broker, MySQL, Redis: their CPU per request too

    def spec(self, queue: str, scenario: str, seed: Seed, n: int, dur: float, tag: str) -> LoadSpec:
        return LoadSpec(
            url=self.env.amqp_url,
            queue=queue,
            scenario=scenario,
            seed=seed,
            inflight=n,
            duration=dur,
            warmup=self.args.warmup,
            tag=tag,
        )

    def _timed(self, spec: LoadSpec, pid: int) -> dict[str, Any]:
        """Run ``spec``; add the server's CPU use and how busy the whole machine was."""
        peers0 = {role: cpu_seconds(p) for role, p in self.peers.items()}
        cpu0, (busy0, total0), t0 = cpu_seconds(pid), machine_busy(), time.perf_counter()
        result = self.gen.run(spec)
        cpu, wall = cpu_seconds(pid) - cpu0, time.perf_counter() - t0
        busy1, total1 = machine_busy()
        sent = result["throughput_rps"] * (spec.warmup + spec.duration) or 1.0
        result["peer_cpu_ms_per_req"] = {
            role: round(1000 * (cpu_seconds(p) - peers0[role]) / sent, 3)
            for role, p in self.peers.items()
        }
        result["server_cpu_pct"] = round(100 * cpu / wall, 1)
        result["server_cpu_ms_per_req"] = round(1000 * cpu / sent, 3)
        result["machine_busy_pct"] = round(100 * (busy1 - busy0) / max(total1 - total0, 1), 1)
        return result

    def _echo(self, seed: Seed, n: int, dur: float) -> dict[str, Any]:
        echo = self._timed(self.spec(ECHO_QUEUE, "echo", seed, n, dur, "echo"), self.echo_pid)
        _progress(echo)
        self.res["echo"].append(echo)
        return echo

    def measure(
        self,
        scenario: str,
        seed: Seed,
        n: int,
        dur: float,
        tag: str,
        queue: str = REQUEST_QUEUE,
    ) -> dict[str, Any]:
        """``scenario`` against the daemon, bracketed by echo runs at the same ``n``.

        The baseline is the mean of the echo run right before and the one right after (the
        one after is reused as the next scenario's "before"), which keeps the ratio honest
        when the CPU left over by the rest of the shared machine drifts during the benchmark.
        """
        before = self._last_echo
        if before is None or (before["inflight"], before["duration_s"]) != (n, dur):
            before = self._echo(seed, n, dur)
        result = self._timed(self.spec(queue, scenario, seed, n, dur, tag), self.pid)
        after = self._last_echo = self._echo(seed, n, dur)
        result["echo_rps"] = round((before["throughput_rps"] + after["throughput_rps"]) / 2, 1)
        result["echo_rps_before_after"] = [before["throughput_rps"], after["throughput_rps"]]
        result["echo_p99_ms"] = round((before["p99_ms"] + after["p99_ms"]) / 2, 2)
        result["echo_p50_ms"] = round((before["p50_ms"] + after["p50_ms"]) / 2, 3)
        result["added_p50_ms"] = round(result["p50_ms"] - result["echo_p50_ms"], 3)
        if result["echo_rps"]:
            result["ratio_to_echo"] = round(result["throughput_rps"] / result["echo_rps"], 3)
        _progress(result)
        return result

    def run_daemon_phases(self, daemon: Daemon, seed: Seed, sampler: RssSampler) -> None:
        mib, peak_kb = report.MIB, 0

        def sampled(run: dict[str, Any]) -> dict[str, Any]:
            """``run`` with the daemon's peak RSS sampled while it ran."""
            nonlocal peak_kb
            run["rss_peak_mib"] = round(sampler.peak_kb / mib, 1)
            peak_kb = max(peak_kb, sampler.peak_kb)
            sampler.reset()
            return run

        sampler.reset()
        for name in [s for s in self.args.scenarios.split(",") if s]:
            self.res["scenarios"][name] = sampled(
                self.measure(name, seed, self.args.inflight, self.args.duration, f"m{name}")
            )
        for i, n in enumerate(_ints(self.args.sweep)):
            run = self.measure("get", seed, n, self.sweep_duration, f"w{i}")
            self.res["sweep"].append(sampled(run))
        for n in _ints(self.args.latency):
            for name in [s for s in self.args.latency_scenarios.split(",") if s]:
                run = self.measure(name, seed, n, self.sweep_duration, f"l{name}{n}")
                self.res.setdefault("latency", []).append(sampled(run))
        self.res["memory"] = {
            "peak_sampled_mib": round(peak_kb / mib, 1),
            "peak_hwm_mib": round(daemon.hwm_kb() / mib, 1),
        }
        time.sleep(2)
        self.res["memory"]["idle_after_mib"] = round(daemon.rss_kb() / mib, 1)
        for name in [s for s in self.args.profile.split(",") if s]:
            out = Path(self.args.profile_dir) / f"cm-bench-profile-{name}.txt"
            with Profiler(daemon.pid, str(out), self.args.duration):
                run = self.measure(name, seed, self.args.inflight, self.args.duration, f"p{name}")
            run["profile"] = str(out)
            self.res.setdefault("profiled_runs", []).append(run)

    def run(self) -> None:
        with EchoServer(self.env.amqp_url, self.args.prefetch) as echo:
            self.echo_pid = echo.pid
            seed = self.run_main_daemon()
            # The floor runs while the cache is still warm: the agent daemon drops the
            # cached records when it starts (RedisCache flush_at_start).
            floors = [s for s in self.args.floor_scenarios.split(",") if s]
            modes = [m for m in self.args.floor_modes.split(",") if m] if floors else []
            for mode in modes:
                self.run_floor(seed, mode, [s for s in floors if s != "create_agent"], False)
            agent = [s for s in self.args.agent_scenarios.split(",") if s]
            if agent:
                self.run_agent_daemon(seed, agent)
            if "create_agent" in floors:
                with FakeAgentManager(self.env.amqp_url, max(self.args.prefetch, 64)):
                    for mode in modes:
                        self.run_floor(seed, mode, ["create_agent"], True)

    def run_main_daemon(self) -> Seed:
        cmd = shlex.split(self.args.daemon_cmd.format(prefetch=self.args.prefetch))
        metrics_port = free_port()
        daemon = Daemon(cmd, self.env.daemon_env(metrics_port), Path(self.args.daemon_log))
        sampler = RssSampler(0)
        try:
            with daemon.tail_on_failure("daemon"):
                daemon.start()
                self.res["startup_s"] = round(daemon.wait_first_reply(self.env.amqp_url), 3)
                time.sleep(1)
                self.res["idle_start_mib"] = round(daemon.rss_kb() / report.MIB, 1)
                client = RpcClient(self.env.amqp_url)
                try:
                    self.res["rabbitmq"] = client.server_version()
                    seed = seed_data(client, self.env.run_id, self.args.seed_count)
                finally:
                    client.close()
                sampler = RssSampler(daemon.pid)
                sampler.start()
                self.pid = daemon.pid
                self.run_daemon_phases(daemon, seed, sampler)
                self.res["daemon_counters"] = daemon_counters(metrics_port, COUNTERS)
        finally:
            sampler.stop()
            code, took = daemon.stop()
            self.res["exit_code"], self.res["stop_s"] = code, round(took, 2)
        self.res.setdefault("memory", {})["idle_start_mib"] = self.res.pop("idle_start_mib")
        return seed

    def run_agent_daemon(self, seed: Seed, names: list[str]) -> None:
        """``names`` against a second daemon with the agent check on (``--agent-daemon-cmd``),
        whose every create asks the fake agent-manager first."""
        cmd = shlex.split(self.args.agent_daemon_cmd.format(prefetch=self.args.prefetch))
        log = Path(self.args.daemon_log + ".agent")
        daemon = Daemon(cmd, self.env.daemon_env(free_port()), log)
        sampler = RssSampler(0)
        info: dict[str, Any] = self.res.setdefault("agent_daemon", {"cmd": " ".join(cmd)})
        try:
            with (
                daemon.tail_on_failure("agent daemon"),
                FakeAgentManager(self.env.amqp_url, max(self.args.prefetch, 64)),
            ):
                daemon.start()
                info["startup_s"] = round(daemon.wait_first_reply(self.env.amqp_url), 3)
                sampler = RssSampler(daemon.pid)
                sampler.start()
                self.pid = daemon.pid
                profiled = [s for s in self.args.profile.split(",") if s]
                for name in names:
                    n, dur = self.args.inflight, self.args.duration
                    if name in profiled:
                        out = Path(self.args.profile_dir) / f"cm-bench-profile-{name}.txt"
                        with Profiler(daemon.pid, str(out), dur):
                            self.measure(name, seed, n, dur, f"p{name}")
                    run = self.measure(name, seed, n, dur, f"a{name}")
                    run["rss_peak_mib"] = round(sampler.peak_kb / report.MIB, 1)
                    sampler.reset()
                    self.res["scenarios"][name] = run
                info["peak_hwm_mib"] = round(daemon.hwm_kb() / report.MIB, 1)
        finally:
            sampler.stop()
            code, took = daemon.stop()
            info["exit_code"], info["stop_s"] = code, round(took, 2)

    def run_floor(self, seed: Seed, mode: str, names: list[str], agent: bool) -> None:
        """``names`` against the floor server (bench/floor.py) in ``mode``, on the same data
        (the daemons filled the cache); get and auth also at the ``--floor-latency`` depths.
        The ``group`` and ``rows`` modes differ from ``batch`` for creates only: they run only
        those."""
        if mode in ("group", "rows"):
            names = [n for n in names if n.startswith("create")]
        if not names:
            return
        cmd = [sys.executable, "-m", "customer_manager.launch", "bench.floor", "--mode", mode]
        cmd += ["--prefetch", str(self.args.prefetch)] + (["--agent-check"] if agent else [])
        env = {**self.env.daemon_env(0), "PYTHONPATH": str(HERE.parent)}
        server = Daemon(cmd, env, Path(f"{self.args.daemon_log}.floor-{mode}"))
        suffix = "" if mode == "seq" else f"_{mode}"  # floor_get, floor_get_batch, ...
        try:
            with server.tail_on_failure("floor server"):
                server.start()
                floor.wait_ready(self.env.amqp_url)
                self.pid = server.pid
                for name in names:
                    label, n, dur = f"floor_{name}{suffix}", self.args.inflight, self.args.duration
                    run = self.measure(label, seed, n, dur, f"f{mode}{name}", floor.FLOOR_QUEUE)
                    self.res.setdefault("floor", []).append(run)
                for n in _ints(self.args.floor_latency):
                    for name in [s for s in names if s in ("get", "auth")]:
                        label, dur = f"floor_{name}{suffix}", self.sweep_duration
                        run = self.measure(label, seed, n, dur, f"g{mode}{name}", floor.FLOOR_QUEUE)
                        self.res.setdefault("floor_latency", []).append(run)
        finally:
            code, _ = server.stop()
            if code:
                print(f"bench: the floor server exited with {code}", file=sys.stderr)


# Daemon counters read at the end of a run (the series' label sets and values).
COUNTERS = (
    "customer_manager_accesskey_last_used_write_total",
    "customer_manager_storage_batch_size",
)


def daemon_counters(port: int, names: tuple[str, ...]) -> dict[str, float]:
    """The daemon's samples of the counters ``names`` from its metrics endpoint."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as page:
        text = page.read().decode()
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(names) and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            if not series.endswith("_created") and "_created{" not in series:
                found[series] = float(value)
    return found


def _progress(r: dict[str, Any]) -> None:
    ratio = f" x{r['ratio_to_echo']:.2f}" if "ratio_to_echo" in r else ""
    added = f" (+{r['added_p50_ms']:.2f})" if "added_p50_ms" in r else ""
    print(
        f"bench: {r['scenario']:>6} n={r['inflight']:<3} {r['throughput_rps']:8.1f} req/s"
        f"{ratio} p50 {r['p50_ms']:.2f} ms{added} p99 {r['p99_ms']:.2f} ms non-200 {r['non_200']} "
        f"server {r.get('server_cpu_pct', 0)}% cpu, {r.get('server_cpu_ms_per_req', 0)} ms/req, "
        f"machine {r.get('machine_busy_pct', 0)}% busy",
        file=sys.stderr,
        flush=True,
    )


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM (and SIGINT, even if inherited as ignored) unwind through every cleanup block.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    began = time.perf_counter()
    run_id = f"{os.getpid()}_{int(time.time()) % 100000}"
    opts = EnvOptions(
        mysql_dsn=args.mysql_dsn,
        redis_address=args.redis_address,
        redis_db=args.redis_db,
        amqp_base=args.amqp,
        vhost=args.vhost,
        migrate_cmd=shlex.split(args.migrate_cmd),
    )
    gen = Generator()
    try:
        with BenchEnv(opts, run_id) as env:
            bench = Bench(args, env, gen)
            bench.run()
            versions = server_versions(env)
    finally:
        gen.close()
    res = bench.res
    res["meta"] = {
        "command": "python -m bench.run "
        + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "elapsed_s": round(time.perf_counter() - began, 1),
        "duration_s": args.duration,
        "sweep_duration_s": bench.sweep_duration,
        "warmup_s": args.warmup,
        "inflight": args.inflight,
        "prefetch": args.prefetch,
        "seed_count": args.seed_count,
        "daemon_cmd": args.daemon_cmd.format(prefetch=args.prefetch),
        "agent_daemon_cmd": args.agent_daemon_cmd.format(prefetch=args.prefetch),
        "migrate_cmd": args.migrate_cmd,
        "rabbitmq": res.pop("rabbitmq", "?"),
        **versions,
        "machine": report.machine_info(),
    }
    res["targets"] = report.targets(res)
    if args.results:
        report.write(Path(args.results), res)
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
