"""A replica restarted while MySQL is unreachable (found by the soak, seed 2): it used to exit
1 at once, leaving the service one replica short (and, after a kill during a Redis outage,
nobody to drop the entries it missed). It now waits for MySQL (up to STARTUP_WAIT)."""

from __future__ import annotations

from pathlib import Path

import pytest

from customer_manager.config import parse_dsn
from tests.support.faults import Replica, dsn_via, replica_env
from tests.support.proxy import TcpProxy
from tests.support.servers import REDIS_DB
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


def test_a_replica_starting_while_mysql_is_unreachable_waits_for_it(
    fresh_migrated_dsn: str, redis_address: str, amqp_url: str, tmp_path: Path
) -> None:
    target = parse_dsn(fresh_migrated_dsn)
    proxy = TcpProxy((target.host, target.port))
    proxy.start()
    proxy.pause()
    env = replica_env(amqp_url, dsn_via(fresh_migrated_dsn, proxy.port), redis_address, REDIS_DB)
    replica = Replica(env, tmp_path / "replica.log")
    try:
        waiting = lambda: any("trying again" in line for line in replica.lines())  # noqa: E731
        wait_until(waiting, 20, "the replica never reported waiting for MySQL")
        assert replica.proc.poll() is None, "\n".join(replica.lines())
        proxy.resume()
        replica.health_port(30)  # it finished starting
        assert replica.proc.poll() is None
    finally:
        replica.stop()
        proxy.close()
    assert replica.proc.returncode == 0
