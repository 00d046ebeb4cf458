"""Writes what k8s/monitoring/ generates: ``prometheusrule.yml`` (the plain rules file wrapped
for the Prometheus Operator) and ``grafana-dashboard.json`` (the dashboard described below).

    python k8s/monitoring/generate.py           # rewrite both
    python k8s/monitoring/generate.py --check   # exit 1 if either is out of date

``customer-manager.rules.yml`` is the one hand-edited source of the alerts. The tests
(tests/deploy/test_monitoring.py, tests/integration/test_monitoring_metrics.py) load this file
for the paths, the renderers and ``rule_exprs``/``dashboard_exprs``/``selectors``.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
RULES = HERE / "customer-manager.rules.yml"
PROMETHEUS_RULE = HERE / "prometheusrule.yml"
DASHBOARD = HERE / "grafana-dashboard.json"

Obj = dict[str, Any]

# ------------------------------------------------------------------------ PrometheusRule


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (PromQL) as literal blocks, as they are written in the rules file."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def load_rules() -> Obj:
    rules = yaml.safe_load(RULES.read_text("utf-8"))
    assert isinstance(rules, dict)
    return rules


def prometheus_rule(rules: Obj) -> Obj:
    """The PrometheusRule holding exactly the rules file's groups."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "customer-manager", "labels": {"app": "customer-manager"}},
        "spec": {"groups": rules["groups"]},
    }


def render_prometheus_rule() -> str:
    header = (
        "# Generated from customer-manager.rules.yml by generate.py (same directory): edit the\n"
        "# rules file and run `python k8s/monitoring/generate.py`, never this file.\n"
    )
    body = yaml.dump(prometheus_rule(load_rules()), Dumper=_Dumper, sort_keys=False, width=100)
    return header + body


# ------------------------------------------------------------------------------ dashboard

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
SELECTOR = 'job=~"$job", instance=~"$instance"'  # replaces $sel in the queries below


class Panel:
    """A time series panel: ``targets`` are (PromQL with ``$sel``, legend) pairs."""

    def __init__(self, title: str, unit: str, description: str, *targets: tuple[str, str]) -> None:
        self.title, self.unit, self.description, self.targets = title, unit, description, targets


def _rate(metric: str, matchers: str = "") -> str:
    extra = f", {matchers}" if matchers else ""
    return f"rate({metric}{{$sel{extra}}}[$__rate_interval])"


def _p99(metric: str, by: str) -> str:
    return f"histogram_quantile(0.99, sum by (le, {by}) ({_rate(metric + '_bucket')}))"


ROWS: list[tuple[str, list[Panel]]] = [
    (
        "Requests",
        [
            Panel(
                "Request rate by route",
                "reqps",
                "Replies sent per second, by route (type) and method.",
                (
                    f"sum by (type, method) ({_rate('customer_manager_requests_total')})",
                    "{{method}} {{type}}",
                ),
            ),
            Panel(
                "Request latency p99 by route",
                "ms",
                "99th percentile of request handling time (receive to reply), per route.",
                (_p99("customer_manager_receive_request_process_time", "type"), "{{type}}"),
            ),
            Panel(
                "Error replies by status and reason",
                "reqps",
                "Error replies per second by status code and VoIPbin error reason.",
                (
                    f"sum by (status, reason) ({_rate('customer_manager_error_replies_total')})",
                    "{{status}} {{reason}}",
                ),
            ),
            Panel(
                "Requests in flight and redeliveries",
                "short",
                "Requests received and not yet answered (at most PREFETCH per replica), and"
                " requests per second that RabbitMQ redelivered after a consumer was lost.",
                ("sum by (instance) (customer_manager_requests_in_flight{$sel})", "{{instance}}"),
                (
                    f"sum({_rate('customer_manager_requests_redelivered_total')})",
                    "redelivered/s",
                ),
            ),
            Panel(
                "Readiness checks",
                "bool",
                "1 while a readiness check passes, per replica (what /readyz answers).",
                ("customer_manager_ready{$sel}", "{{instance}} {{check}}"),
            ),
            Panel(
                "AMQP reconnects",
                "short",
                "Broker connections re-established after a loss, per connection.",
                (
                    "sum by (connection) (increase(customer_manager_amqp_reconnects_total{$sel}"
                    "[$__rate_interval]))",
                    "{{connection}}",
                ),
            ),
        ],
    ),
    (
        "Actors",
        [
            Panel(
                "Pool mailbox depth",
                "short",
                "Works waiting for a free pool member, per pool (summed over replicas).",
                ("sum by (pool) (customer_manager_pool_queued{$sel})", "{{pool}}"),
            ),
            Panel(
                "Works in flight",
                "short",
                "Works submitted to a pool and not yet completed, per pool.",
                ("sum by (pool) (customer_manager_pool_in_flight{$sel})", "{{pool}}"),
            ),
            Panel(
                "Actor restarts and dead letters",
                "short",
                "Crashed pool members replaced by the supervisor, and works that were addressed"
                " to a member that had died (they are redelivered).",
                (
                    "sum by (pool) (increase(customer_manager_actor_restarts_total{$sel}"
                    "[$__rate_interval]))",
                    "restarts {{pool}}",
                ),
                (
                    "sum by (pool) (increase(customer_manager_dead_letters_total{$sel}"
                    "[$__rate_interval]))",
                    "dead letters {{pool}}",
                ),
            ),
        ],
    ),
    (
        "Outbox and events",
        [
            Panel(
                "Outbox depth",
                "short",
                "Outbox entries (events and webhooks) not yet published. Every replica counts"
                " the same table, so this is the largest count reported.",
                ("max(customer_manager_outbox_backlog{$sel})", "entries"),
            ),
            Panel(
                "Outbox oldest entry age",
                "s",
                "Age of the oldest entry not yet published (0 when the outbox is empty).",
                ("max(customer_manager_outbox_oldest_age_seconds{$sel})", "oldest"),
            ),
            Panel(
                "Events published by type",
                "ops",
                "Events published per second by event type, and all outbox entries relayed"
                " (events and webhooks).",
                (f"sum by (type) ({_rate('customer_manager_notify_total')})", "{{type}}"),
                (f"sum({_rate('customer_manager_outbox_relayed_total')})", "all relayed"),
            ),
            Panel(
                "Event publish latency p99",
                "ms",
                "99th percentile of the time to publish an event batch, broker confirm included.",
                (_p99("customer_manager_notify_process_time", "type"), "{{type}}"),
            ),
        ],
    ),
    (
        "Cache and peers",
        [
            Panel(
                "Cache hits and misses",
                "ops",
                "Cache reads per second by operation and result (a failed read counts as a"
                " miss), and backend errors by operation.",
                (
                    f"sum by (operation, result) ({_rate('customer_manager_cache_reads_total')})",
                    "{{operation}} {{result}}",
                ),
                (
                    f"sum by (operation) ({_rate('customer_manager_cache_errors_total')})",
                    "{{operation}} error",
                ),
            ),
            Panel(
                "Outgoing RPC latency p99 by peer",
                "ms",
                "99th percentile of the round trip of calls to other managers, per queue.",
                (_p99("customer_manager_request_process_time", "target"), "{{target}}"),
            ),
        ],
    ),
    (
        "Process",
        [
            Panel(
                "Resident memory",
                "bytes",
                "Resident set size per replica (compare with the pod's memory limit).",
                ("process_resident_memory_bytes{$sel}", "{{instance}}"),
            ),
            Panel(
                "CPU",
                "percentunit",
                "CPU time per second per replica (1 = one core; the GIL caps a replica near 1).",
                (_rate("process_cpu_seconds_total"), "{{instance}}"),
            ),
        ],
    ),
]


def _variable(name: str, label: str, query: str) -> Obj:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "definition": query,
        "query": {"query": query, "refId": name},
        "refresh": 2,
        "multi": True,
        "includeAll": True,
        "allValue": ".*",
        "current": {},
        "options": [],
        "regex": "",
        "sort": 1,
        "hide": 0,
    }


def _panel(panel: Panel, pid: int, x: int, y: int, width: int) -> Obj:
    return {
        "id": pid,
        "type": "timeseries",
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": width, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "targets": [
            {
                "refId": chr(ord("A") + i),
                "datasource": DATASOURCE,
                "expr": expr.replace("$sel", SELECTOR),
                "legendFormat": legend,
            }
            for i, (expr, legend) in enumerate(panel.targets)
        ],
    }


def dashboard() -> Obj:
    panels: list[Obj] = []
    y = 0
    for title, row in ROWS:
        panels.append(
            {
                "id": len(panels) + 1,
                "type": "row",
                "title": title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                "panels": [],
            }
        )
        y += 1
        for i, panel in enumerate(row):
            panels.append(_panel(panel, len(panels) + 1, (i % 3) * 8, y + (i // 3) * 8, 8))
        y += 8 * ((len(row) + 2) // 3)
    return {
        "uid": "customer-manager",
        "title": "customer-manager",
        "description": "VoIPbin customer-manager: requests, actors, outbox, cache, peers, process."
        " Generated by k8s/monitoring/generate.py.",
        "tags": ["voipbin", "customer-manager"],
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-3h", "to": "now"},
        "refresh": "30s",
        "timezone": "",
        "annotations": {"list": []},
        "links": [],
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "options": [],
                    "regex": "",
                    "refresh": 1,
                    "hide": 0,
                },
                _variable("job", "Job", "label_values(customer_manager_build_info, job)"),
                _variable(
                    "instance",
                    "Instance",
                    'label_values(customer_manager_build_info{job=~"$job"}, instance)',
                ),
            ]
        },
        "panels": panels,
    }


def render_dashboard() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"


# ------------------------------------------------------------------------- for the tests

# Grafana's variables, as values that make a query plain PromQL again.
_VARIABLES = {"$__rate_interval": "5m", "$job": ".*", "$instance": ".*"}


def rule_exprs(groups: list[Obj]) -> dict[str, str]:
    """Each rule's expression, by alert (or recording rule) name."""
    return {r.get("alert") or r["record"]: r["expr"] for g in groups for r in g["rules"]}


def dashboard_exprs(dash: Obj) -> dict[str, str]:
    """Every query of the dashboard (panel targets and variables) as plain PromQL, by where
    it stands (``panel title/refId`` or ``$variable``)."""
    found: dict[str, str] = {}
    for panel in dash["panels"]:
        for target in panel.get("targets", []):
            found[f"{panel['title']}/{target['refId']}"] = target["expr"]
    for var in dash["templating"]["list"]:
        if var["type"] == "query":
            inner = re.fullmatch(r"label_values\((.*), *\w+\)", var["query"]["query"])
            assert inner, f"${var['name']}: not a label_values(selector, label) query"
            found[f"${var['name']}"] = inner.group(1)
    for key, expr in found.items():
        for name, value in _VARIABLES.items():
            expr = expr.replace(name, value)
        found[key] = expr
    return found


def selectors(expr: str) -> list[tuple[str, set[str]]]:
    """The series selectors of a PromQL expression: each metric name with the label names its
    matchers use (promql-parser, a test dependency, parses it)."""
    import promql_parser

    found: list[tuple[str, set[str]]] = []

    def walk(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            assert node.name, f"a selector without a metric name in {expr!r}"
            found.append((node.name, {m.name for m in node.matchers.matchers}))
        elif isinstance(node, promql_parser.MatrixSelector):
            walk(node.vector_selector)
        elif isinstance(node, promql_parser.BinaryExpr):
            walk(node.lhs)
            walk(node.rhs)
        elif isinstance(node, promql_parser.Call):
            for arg in node.args:
                walk(arg)
        elif isinstance(node, promql_parser.AggregateExpr):
            walk(node.expr)
            if node.param is not None:
                walk(node.param)
        elif isinstance(
            node, promql_parser.ParenExpr | promql_parser.UnaryExpr | promql_parser.SubqueryExpr
        ):
            walk(node.expr)

    walk(promql_parser.parse(expr))
    return found


# ---------------------------------------------------------------------------------- main

OUTPUTS = {PROMETHEUS_RULE: render_prometheus_rule, DASHBOARD: render_dashboard}


def main(argv: list[str]) -> int:
    check = argv == ["--check"]
    if argv and not check:
        print(__doc__, file=sys.stderr)
        return 2
    stale = []
    for path, render in OUTPUTS.items():
        text = render()
        if path.exists() and path.read_text("utf-8") == text:
            continue
        if check:
            stale.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(HERE.parents[1])}")
    if stale:
        print(f"out of date: {', '.join(stale)} (run python k8s/monitoring/generate.py)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
