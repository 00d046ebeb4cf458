"""Scenarios 3 and 4: Redis and MySQL outages, each through a TcpProxy in front of the
real server (the shared servers keep running for the other tests).

3. Redis cut (docs/storage.md#redis-outages): reads and writes are answered from MySQL, /readyz is
   false, and after recovery the cache fills again without ever serving an entry that a
   write during the outage made stale.
4. MySQL cut, then a network stall: requests get 503 UNAVAILABLE within a bounded time,
   /readyz is false, the process stays up, and requests succeed again after recovery.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import redis

from customer_manager.config import Settings
from customer_manager.main import Daemon
from customer_manager.storage import mysql as mysql_storage
from tests.support.amqp import Client
from tests.support.faults import dsn_via, http_get, unique_email
from tests.support.proxy import TcpProxy
from tests.support.service import start_daemon
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


def timed(client: Client, method: str, uri: str, data: Any = None) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    reply = client.call(method, uri, data, timeout=30)
    return reply, time.monotonic() - started


def ready(daemon: Daemon) -> tuple[int, dict[str, bool]]:
    status, body = http_get(daemon.health.port, "/readyz", timeout=30)
    return status, json.loads(body)


def test_redis_down_requests_served_from_mysql_and_no_stale_entry_after(
    client: Client,
    daemons: list[Daemon],
    service_settings: Callable[..., Settings],
    redis_db: redis.Redis,
    report: Callable[..., None],
) -> None:
    proxy = TcpProxy(("127.0.0.1", 6379))
    proxy.start()
    try:
        daemon = start_daemon(
            service_settings(redis_address=f"127.0.0.1:{proxy.port}", agent_check="off")
        )
        daemons.append(daemon)
        created = client.call("POST", "/v1/customers", {"email": unique_email("redis")})
        cid = created["data"]["id"]
        key = f"customer:{cid}"
        assert client.call("GET", f"/v1/customers/{cid}")["status_code"] == 200
        assert redis_db.get(key) is not None, "the customer was not cached"

        proxy.pause()
        during = [
            timed(client, "GET", f"/v1/customers/{cid}"),
            timed(client, "PUT", f"/v1/customers/{cid}", {"name": "after-outage"}),
            timed(client, "GET", f"/v1/customers/{cid}"),
            timed(client, "POST", "/v1/customers", {"email": unique_email("redis2")}),
            timed(client, "GET", "/v1/customers?page_size=5"),
        ]
        status_down, checks_down = ready(daemon)
        gauges_down = http_get(daemon.health.port, "/metrics")[1]  # what the alerts read
        stale = json.loads(redis_db.get(key) or b"{}")  # the service could not refresh it
        proxy.resume()

        served: list[str] = []

        def cached_again() -> bool:
            reply = client.call("GET", f"/v1/customers/{cid}")
            served.append(reply["data"].get("name", ""))
            raw = redis_db.get(key)
            return raw is not None and json.loads(raw).get("name") == "after-outage"

        refill_s = wait_until(cached_again, 15, "the cache never filled again")
        final = client.call("GET", f"/v1/customers/{cid}")
        status_up = wait_until(lambda: ready(daemon)[0] == 200, 10, "/readyz stayed false")
        gauges_up = http_get(daemon.health.port, "/metrics")[1]
    finally:
        proxy.close()
    codes = [r["status_code"] for r, _ in during]
    report(
        during_outage_codes=codes,
        max_latency_ms=round(max(s for _, s in during) * 1000),
        readyz_during=status_down,
        refill_s=round(refill_s, 2),
        gets_until_refilled=len(served),
        ready_again_s=round(status_up, 2),
    )
    assert codes == [200] * 5
    assert during[2][0]["data"]["name"] == "after-outage"
    assert status_down == 503 and checks_down["cache"] is False and checks_down["storage"]
    assert 'customer_manager_ready{check="cache"} 0.0' in gauges_down
    assert 'customer_manager_ready{check="storage"} 1.0' in gauges_down
    assert 'customer_manager_ready{check="cache"} 1.0' in gauges_up
    assert stale.get("name", "") != "after-outage"  # Redis really held a stale entry
    assert set(served) == {"after-outage"}, f"a stale entry was served: {served}"
    assert final["data"]["name"] == "after-outage"


def test_mysql_down_is_503_within_a_bound_and_recovers_without_restart(
    client: Client,
    daemons: list[Daemon],
    service_settings: Callable[..., Settings],
    migrated_dsn: str,
    report: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Refused: the server is gone (RST). Stalled: a partition, no byte flows; the MySQL
    read timeout (IO_TIMEOUT, 15 s in production, 2 s here) frees the storage actor and the
    request gets 503 after it plus one reconnect attempt (CONNECT_TIMEOUT, 3 s); without it
    the request waited for the storage ask timeout (10 s) and the actor stayed stuck."""
    monkeypatch.setattr(mysql_storage, "IO_TIMEOUT", 2)
    proxy = TcpProxy(("127.0.0.1", 3306))
    proxy.start()
    try:
        daemon = start_daemon(
            service_settings(database_dsn=dsn_via(migrated_dsn, proxy.port), agent_check="off")
        )
        daemons.append(daemon)
        assert (
            client.call("POST", "/v1/customers", {"email": unique_email("db")})["status_code"]
            == 200
        )
        figures: dict[str, Any] = {}
        for mode in ("refused", "stalled"):
            proxy.pause() if mode == "refused" else proxy.stall()
            down = [
                timed(client, "POST", "/v1/customers", {"email": unique_email("db")}),
                timed(client, "GET", f"/v1/customers/{uuid.uuid4()}"),
                timed(client, "GET", "/v1/customers?page_size=5"),
            ]
            status_down, checks = ready(daemon)
            alive = daemon.consumer.proxy().ready().get(timeout=5)
            proxy.resume()
            recovered = wait_until(
                lambda: (
                    client.call("POST", "/v1/customers", {"email": unique_email("db")})[
                        "status_code"
                    ]
                    == 200
                ),
                30,
                "requests did not succeed again after MySQL came back",
            )
            status_up = ready(daemon)[0]
            codes = [r["status_code"] for r, _ in down]
            reasons = {r["data"]["status"] for r, _ in down}
            figures[mode] = (codes, max(s for _, s in down), status_down, recovered, status_up)
            assert codes == [503] * 3, (mode, codes)
            assert reasons == {"UNAVAILABLE"}
            assert status_down == 503 and checks["storage"] is False
            assert alive, "the consumer stopped"
            assert status_up == 200
    finally:
        proxy.close()
    for mode, (codes, worst, status_down, recovered, status_up) in figures.items():
        report(
            mode=mode,
            codes=codes,
            worst_503_s=round(worst, 2),
            readyz_during=status_down,
            recovered_s=round(recovered, 2),
            readyz_after=status_up,
        )
    assert figures["refused"][1] < 5.0
    assert figures["stalled"][1] < 2 + mysql_storage.CONNECT_TIMEOUT + 1.5
