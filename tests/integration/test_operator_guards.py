"""Operators' guards (issue 13): settings checked before anything is connected, one line on
failure, no silent embedded store for the daemon, no CLI write past the daemons' cache,
quiet broker retries, SIGTERM always ends the daemon. Unreachable servers are closed ports
on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from customer_manager.cli import main as ctl

pytestmark = pytest.mark.integration

CLOSED = "127.0.0.1:1"  # nothing listens on port 1
DAEMON = [sys.executable, "-m", "customer_manager.main"]


def daemon_env(**settings: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE", "REDIS", "RABB"))}
    return {**base, "RABBITMQ_ADDRESS": f"amqp://guest:guest@{CLOSED}/", **settings}


def run_daemon(timeout: float = 20, **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        DAEMON, env=daemon_env(**settings), capture_output=True, text=True, timeout=timeout
    )


def one_error_line(stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "Traceback" not in stderr, stderr
    return errors[0]


def test_daemon_without_a_store_choice_exits_1() -> None:
    done = run_daemon(DATABASE_DSN="")
    assert done.returncode == 1
    assert "DATABASE_DSN is empty" in one_error_line(done.stderr) and "sqlite:" in done.stderr


@pytest.mark.parametrize("listen", ["notanaddress", ":99999", "in-use"])
def test_bad_listen_address_exits_1_before_connecting(listen: str, tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        address = f"127.0.0.1:{busy.getsockname()[1]}" if listen == "in-use" else listen
        started = time.monotonic()
        done = run_daemon(
            DATABASE_DSN=f"root:@tcp({CLOSED})/x",  # never reached: the listener fails first
            PROMETHEUS_LISTEN_ADDRESS=address,
        )
    assert done.returncode == 1 and time.monotonic() - started < 10
    line = one_error_line(done.stderr)
    assert "PROMETHEUS_LISTEN_ADDRESS" in line or "cannot serve metrics" in line
    assert "MySQL" not in done.stderr


@pytest.mark.parametrize("dsn", ["root@127.0.0.1:3306/x", "root:@tcp(127.0.0.1:notaport)/x"])
def test_malformed_dsn_is_one_line(dsn: str) -> None:
    done = run_daemon(DATABASE_DSN=dsn, PROMETHEUS_LISTEN_ADDRESS="127.0.0.1:0")
    assert done.returncode == 1 and "DATABASE_DSN" in one_error_line(done.stderr)
    cli = CliRunner().invoke(ctl, ["--database_dsn", dsn, "customer", "list"])
    assert cli.exit_code == 1 and "DATABASE_DSN" in cli.output and cli.exception is not None


def test_mysql_access_denied_is_named(mysql_dsn: str) -> None:
    dsn = "nobody_cm:wrong@tcp(127.0.0.1:3306)/" + mysql_dsn.rsplit("/", 1)[1]
    done = CliRunner().invoke(ctl, ["--database_dsn", dsn, "--without_redis", "customer", "list"])
    assert done.exit_code == 1
    assert "access denied (error 1045)" in done.output and "unavailable" not in done.output
    assert "wrong" not in done.output


def test_cli_refuses_mysql_without_the_daemons_redis(mysql_dsn: str) -> None:
    done = CliRunner().invoke(ctl, ["--database_dsn", mysql_dsn, "customer", "list"])
    assert done.exit_code == 1 and "REDIS_ADDRESS" in done.output and "24 h" in done.output
    told = CliRunner().invoke(
        ctl, ["--database_dsn", mysql_dsn, "--without_redis", "db", "version"]
    )
    assert told.exit_code == 0, told.output


def test_cli_out_of_range_values_are_usage_errors(tmp_path: Path) -> None:
    store = ["--database_dsn", f"sqlite:{tmp_path / 'g.sqlite3'}"]
    key = ["accesskey", "create", "--customer-id", "2cfbb148-7dc7-11ec-85df-47cf2c8492f0"]
    expire = CliRunner().invoke(ctl, [*store, *key, "--expire", "99999999999"])
    assert expire.exit_code == 2
    assert "more than 2147483647 seconds" in expire.output and "Expected" not in expire.output
    name = CliRunner().invoke(
        ctl, [*store, "customer", "create", "--email", "a@b.co", "--name", "x" * 300]
    )
    assert name.exit_code == 2 and "300 characters, at most 255" in name.output
    assert not (tmp_path / "g.sqlite3").exists()  # nothing was opened


def test_daemon_quiet_retries_then_sigterm_ends_it(tmp_path: Path) -> None:
    """Broker down (closed port), Redis down: the daemon serves health, logs one WARNING per
    broker attempt (no tracebacks), says Redis is unreachable, and SIGTERM ends it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = (tmp_path / "daemon.log").open("w+")
    env = daemon_env(
        DATABASE_DSN=f"sqlite:{tmp_path / 'd.sqlite3'}",
        REDIS_ADDRESS=CLOSED,
        PROMETHEUS_LISTEN_ADDRESS=f"127.0.0.1:{port}",
    )
    proc = subprocess.Popen(DAEMON, env=env, stderr=log, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while Path(log.name).read_text().count("cannot connect") < 4:
            assert time.monotonic() < deadline and proc.poll() is None, Path(log.name).read_text()
            time.sleep(0.2)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as health:
            assert health.status == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    text = Path(log.name).read_text()
    assert "Traceback" not in text and '"severity":"ERROR"' not in text
    assert "Redis at 127.0.0.1:1 is unreachable at start" in text
    retries = [line for line in text.splitlines() if "cannot connect" in line]
    assert all('"severity":"WARNING"' in line for line in retries)


def test_unknown_wire_profile_stops_the_daemon_with_one_line() -> None:
    done = run_daemon(DATABASE_DSN=f"root:@tcp({CLOSED})/x", WIRE_PROFILE="newest")
    assert done.returncode == 1
    assert "WIRE_PROFILE must be one of seed, current" in one_error_line(done.stderr)
    assert "MySQL" not in done.stderr  # checked before anything is connected
