"""The alerting rules and the dashboard (k8s/monitoring/) name only metrics the daemon exports.

A daemon runs on the real servers and handles a few requests (a create with its event, a
cache hit, a miss, an error reply); then its /metrics is scraped and every series selector of
every rule and dashboard query is looked up in it: the metric name must be exported (a family
in the exposition: counters as ``_total``, histograms as ``_bucket``/``_count``/``_sum``), and
the labels it matches on must be labels of that metric's samples.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Callable

import pytest
from prometheus_client.parser import text_string_to_metric_families

from customer_manager.config import Settings
from customer_manager.main import Daemon
from tests.support.amqp import Client, EventTap
from tests.support.deploy import monitoring_generator
from tests.support.service import start_daemon
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

TARGET_LABELS = {"job", "instance"}  # added by Prometheus to every series it scrapes
SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_count", "_sum"),
    "summary": ("", "_count", "_sum"),
}


def exported(text: str) -> dict[str, set[str]]:
    """Every series name the exposition offers, with the label names its samples carry."""
    names: dict[str, set[str]] = defaultdict(set)
    for family in text_string_to_metric_families(text):
        for suffix in SUFFIXES.get(family.type, ("",)):  # exported even without samples
            names.setdefault(family.name + suffix, set())
        for sample in family.samples:
            names[sample.name] |= set(sample.labels)
    return names


def scrape(daemon: Daemon) -> str:
    url = f"http://127.0.0.1:{daemon.health.port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as resp:
        body: bytes = resp.read()
    return body.decode()


def test_rules_and_dashboard_use_only_exported_metrics(
    client: Client,
    events: EventTap,
    daemons: list[Daemon],
    service_settings: Callable[..., Settings],
) -> None:
    daemon = start_daemon(service_settings(agent_check="off"))
    daemons.append(daemon)
    email = f"mon-{uuid.uuid4().hex[:8]}@test.com"
    created = client.call("POST", "/v1/customers", {"name": "mon", "email": email})
    assert created["status_code"] == 200, created
    assert client.call("GET", f"/v1/customers/{created['data']['id']}")["status_code"] == 200
    assert client.call("GET", f"/v1/customers/{uuid.uuid4()}")["status_code"] == 404
    assert client.call("GET", "/v1/nothing-here")["status_code"] == 404
    events.wait_for(1)
    scraped: list[str] = []  # the relay counts the outbox every second

    def empty_outbox_shown() -> bool:
        scraped.append(scrape(daemon))
        return "customer_manager_outbox_backlog 0.0" in scraped[-1]

    wait_until(empty_outbox_shown, 10, "the outbox gauge showing the empty outbox", every=0.2)
    text = scraped[-1]

    names = exported(text)
    assert names["customer_manager_ready"] == {"check"}
    assert 'customer_manager_error_replies_total{reason="CUSTOMER_NOT_FOUND",status="404"}' in text
    assert 'customer_manager_cache_reads_total{operation="get",result="miss"}' in text
    assert 'customer_manager_cache_reads_total{operation="get",result="hit"}' in text
    for check in ("storage", "cache", "publisher", "consumer"):
        assert f'customer_manager_ready{{check="{check}"}} 1.0' in text
    assert "customer_manager_outbox_oldest_age_seconds 0.0" in text

    gen = monitoring_generator()
    dashboard = json.loads(gen.DASHBOARD.read_text("utf-8"))
    queries = {
        **{f"rule {k}": v for k, v in gen.rule_exprs(gen.load_rules()["groups"]).items()},
        **{f"dashboard {k}": v for k, v in gen.dashboard_exprs(dashboard).items()},
    }
    checked = set()
    for where, expr in queries.items():
        for name, labels in gen.selectors(expr):
            assert name in names, f"{where}: {name} is not exported by the daemon"
            if names[name]:  # samples seen: the matchers must use their labels
                unknown = labels - names[name] - TARGET_LABELS
                assert not unknown, f"{where}: {name} has no label {sorted(unknown)}"
            checked.add(name)
    assert len(checked) >= 20, sorted(checked)
