"""k8s/monitoring/: the alerting rules, their PrometheusRule, the PodMonitor, the dashboard.

The rules are checked and unit-tested with ``promtool`` (Debian's prometheus package; with
CI=true a missing promtool fails these tests instead of skipping them), the generated files
are compared with what ``generate.py`` renders now, and the dashboard is loaded and every
query parsed. That every metric they name is one the daemon exports is shown against a
running daemon in tests/integration/test_monitoring_metrics.py.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import promql_parser
import pytest
import yaml

from tests.support.deploy import (
    K8S,
    MONITORING,
    NAMESPACE,
    ROOT,
    Obj,
    by_kind,
    kustomize_build,
    monitoring_generator,
)

ALERT_TESTS = Path(__file__).with_name("alerts.test.yml")
RUNBOOK = ROOT / "docs" / "runbook.md"

gen = monitoring_generator()


def promtool_run(promtool: str, *args: str, cwd: Path | None = None) -> str:
    proc = subprocess.run([promtool, *args], capture_output=True, text=True, timeout=120, cwd=cwd)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def rules() -> Obj:
    loaded: Obj = gen.load_rules()
    return loaded


@pytest.fixture(scope="module")
def alerts(rules: Obj) -> dict[str, Obj]:
    return {r["alert"]: r for g in rules["groups"] for r in g["rules"] if "alert" in r}


@pytest.fixture(scope="module")
def dashboard() -> Obj:
    loaded: Obj = json.loads(gen.DASHBOARD.read_text("utf-8"))
    return loaded


# ---------------------------------------------------------------------------------- rules


def test_rules_pass_promtool_check(promtool: str, alerts: dict[str, Obj]) -> None:
    out = promtool_run(promtool, "check", "rules", str(gen.RULES))
    assert f"SUCCESS: {len(alerts)} rules found" in out


def test_prometheusrule_passes_promtool_check(promtool: str, tmp_path: Path) -> None:
    """What the Operator loads is checked too (its spec is a rules file)."""
    (rule,) = yaml.safe_load_all(gen.PROMETHEUS_RULE.read_text("utf-8"))
    spec = tmp_path / "spec.rules.yml"
    spec.write_text(yaml.safe_dump(rule["spec"]), encoding="utf-8")
    promtool_run(promtool, "check", "rules", str(spec))


def test_promtool_rejects_a_broken_rule(promtool: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.rules.yml"
    bad.write_text(
        "groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: sum(rate(x[5m])\n"
    )
    proc = subprocess.run(
        [promtool, "check", "rules", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode != 0


def test_alert_unit_tests_pass_and_cover_every_alert(promtool: str, alerts: dict[str, Obj]) -> None:
    """``promtool test rules`` on synthetic series: each alert fires, with its labels and
    rendered annotations, where it should (and stays quiet in look-alike cases)."""
    promtool_run(promtool, "test", "rules", ALERT_TESTS.name, cwd=ALERT_TESTS.parent)
    cases = yaml.safe_load(ALERT_TESTS.read_text("utf-8"))
    fired = {
        case["alertname"]
        for test in cases["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert len(fired) >= 3
    assert fired == set(alerts), "every alert needs a firing case in alerts.test.yml"


def test_the_alert_unit_tests_can_fail(promtool: str, tmp_path: Path) -> None:
    """A threshold changed in the rules is caught by the unit tests."""
    rules_copy = tmp_path / "k8s" / "monitoring" / gen.RULES.name
    rules_copy.parent.mkdir(parents=True)
    text = gen.RULES.read_text("utf-8")
    assert "customer_manager_outbox_oldest_age_seconds) > 120" in text
    rules_copy.write_text(text.replace("oldest_age_seconds) > 120", "oldest_age_seconds) > 900"))
    cases = tmp_path / "tests" / "deploy" / ALERT_TESTS.name
    cases.parent.mkdir(parents=True)
    cases.write_text(ALERT_TESTS.read_text("utf-8"))
    proc = subprocess.run(
        [promtool, "test", "rules", cases.name],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cases.parent,
    )
    assert proc.returncode != 0
    assert "CustomerManagerOutboxStale" in proc.stdout + proc.stderr


def test_every_alert_says_what_to_check_and_links_its_runbook_section(
    alerts: dict[str, Obj],
) -> None:
    runbook = RUNBOOK.read_text("utf-8")
    sections = dict(re.findall(r"^## (\S+)\n(.*?)(?=^## |\Z)", runbook, re.M | re.S))
    assert set(sections) == set(alerts), "one runbook section per alert, no more"
    for name, rule in alerts.items():
        notes = rule["annotations"]
        anchor = f"docs/runbook.md#{name.lower()}"
        assert notes["runbook_url"] == anchor, name
        assert notes["summary"].strip(), name
        assert "Check first" in notes["description"], name
        assert notes["description"].endswith(f"Runbook: {anchor}"), name
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        for part in ("What it means", "Check first", "Fix"):
            assert f"**{part}**" in sections[name], f"{name}: runbook lacks {part!r}"


def test_the_issue_asks_for_these_alerts(alerts: dict[str, Obj]) -> None:
    """Issue 19's list, by the metric each alert watches."""
    watched = {name: rule["expr"] for name, rule in alerts.items()}
    assert "customer_manager_ready == 0" in watched["CustomerManagerNotReady"]
    assert 'check="consumer"' in watched["CustomerManagerNoConsumer"]
    assert 'status=~"5.."' in watched["CustomerManagerErrorReplies"]
    assert "customer_manager_outbox_oldest_age_seconds" in watched["CustomerManagerOutboxStale"]
    assert "redelivered" in watched["CustomerManagerRedeliveries"]
    assert "histogram_quantile(0.99" in watched["CustomerManagerSlowRequests"]
    assert "process_start_time_seconds" in watched["CustomerManagerRestarting"]


# ------------------------------------------------------------------------ generated files


def test_generated_files_are_up_to_date() -> None:
    assert gen.PROMETHEUS_RULE.read_text("utf-8") == gen.render_prometheus_rule(), (
        "prometheusrule.yml is stale: run python k8s/monitoring/generate.py"
    )
    assert gen.DASHBOARD.read_text("utf-8") == gen.render_dashboard(), (
        "grafana-dashboard.json is stale: run python k8s/monitoring/generate.py"
    )
    assert gen.main(["--check"]) == 0


def test_prometheusrule_holds_exactly_the_rules_file(rules: Obj) -> None:
    (rule,) = yaml.safe_load_all(gen.PROMETHEUS_RULE.read_text("utf-8"))
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["kind"] == "PrometheusRule"
    assert rule["spec"] == {"groups": rules["groups"]}


def test_monitoring_kustomization_renders_the_rule_and_the_pod_monitor() -> None:
    rendered = by_kind(kustomize_build(MONITORING))
    assert set(rendered) == {"PrometheusRule", "PodMonitor"}
    for obj in rendered.values():
        assert obj["metadata"]["namespace"] == NAMESPACE
    (deployment,) = [d for d in kustomize_build(K8S) if d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]
    monitor = rendered["PodMonitor"]["spec"]
    assert monitor["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    (endpoint,) = monitor["podMetricsEndpoints"]
    ports = {p["name"] for c in pod["spec"]["containers"] for p in c.get("ports", [])}
    assert endpoint["port"] in ports
    assert endpoint["path"] == pod["metadata"]["annotations"]["prometheus.io/path"]


# ------------------------------------------------------------------------------ dashboard


def test_dashboard_loads_and_every_panel_has_a_query(dashboard: Obj) -> None:
    panels = dashboard["panels"]
    assert dashboard["uid"] and dashboard["title"]
    assert len({p["id"] for p in panels}) == len(panels)
    graphs = [p for p in panels if p["type"] != "row"]  # a row only groups panels
    assert len(graphs) >= 10
    for panel in graphs:
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        assert panel["datasource"] == gen.DATASOURCE
        for target in panel["targets"]:
            assert target["expr"].strip(), f"panel {panel['title']!r} has an empty query"
        box = panel["gridPos"]
        assert box["x"] + box["w"] <= 24 and box["h"] > 0
    exprs = gen.dashboard_exprs(dashboard)
    assert len(exprs) >= len(graphs)
    for where, expr in exprs.items():
        try:
            promql_parser.parse(expr)
        except Exception as exc:
            pytest.fail(f"{where}: {expr!r} is not PromQL: {exc}")


def test_dashboard_shows_what_the_issue_lists(dashboard: Obj) -> None:
    used = {name for e in gen.dashboard_exprs(dashboard).values() for name, _ in gen.selectors(e)}
    for metric in (
        "customer_manager_requests_total",  # request rate per route
        "customer_manager_receive_request_process_time_bucket",  # latency per route
        "customer_manager_error_replies_total",  # errors by status and reason
        "customer_manager_pool_queued",  # mailbox depth
        "customer_manager_pool_in_flight",  # works in flight
        "customer_manager_outbox_backlog",  # outbox depth
        "customer_manager_outbox_oldest_age_seconds",  # outbox age
        "customer_manager_cache_reads_total",  # cache hits and misses
        "customer_manager_request_process_time_bucket",  # outgoing RPC latency per peer
        "process_resident_memory_bytes",  # RSS
        "process_cpu_seconds_total",  # CPU
    ):
        assert metric in used, metric


def test_dashboard_queries_select_this_service_only(dashboard: Obj) -> None:
    """Process metrics are everybody's: every panel query is narrowed to the $job and
    $instance of customer-manager targets (the variables come from its build_info)."""
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            assert gen.SELECTOR in target["expr"], (panel["title"], target["expr"])
