"""docs/ stays true to the code: every route, error reason, event type, setting, metric,
cache key and schema version the code has is documented, and the documented tables list
nothing the code lacks.
"""

from __future__ import annotations

import ast
import re
import uuid
from pathlib import Path

import click
import pytest

from customer_manager import cli, main
from customer_manager.actors import cache
from customer_manager.messages.routes import ROUTES
from customer_manager.storage import schema
from customer_manager.storage.base import SCHEMA_VERSION
from customer_manager.storage.cache_backend import TTL_SECONDS

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PACKAGE = ROOT / "customer_manager"
ERRORS = {"InvalidArgument", "NotFound", "AlreadyExists", "FailedPrecondition", "Unavailable"}
NOUNS = ("CUSTOMER", "ACCESSKEY")  # the storage tables' nouns in generated reasons


def section(page: str, heading: str) -> str:
    """The text of ``page`` under the heading ``heading``, up to the next heading of the same
    or a higher level."""
    text = (DOCS / page).read_text()
    match = re.search(rf"^(#+) {re.escape(heading)}$", text, re.M)
    assert match, f"{page} has no heading {heading!r}"
    rest = text[match.end() :]
    end = re.search(rf"^#{{1,{len(match.group(1))}}} ", rest, re.M)
    return rest[: end.start()] if end else rest


def quoted(text: str, pattern: str = r"[A-Z][A-Z0-9_]+") -> set[str]:
    """Every ``code`` span of ``text`` that fully matches ``pattern``."""
    return {m for m in re.findall(r"`([^`\n]+)`", text) if re.fullmatch(pattern, m)}


def sources() -> list[str]:
    return [path.read_text() for path in sorted(PACKAGE.rglob("*.py"))]


def raised_reasons() -> set[str]:
    """The ``reason`` of every error the package constructs: a literal, the class default
    when none is given, or ``<TABLE>_<SUFFIX>`` for a reason built from a table's noun."""
    from customer_manager import errors

    found: set[str] = set()
    for source in sources():
        for node in ast.walk(ast.parse(source)):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", "") in ERRORS):
                continue
            reason = node.args[1] if len(node.args) > 1 else None
            if reason is None:
                found.add(getattr(errors, node.func.id).default_reason)
            elif isinstance(reason, ast.Constant):
                found.add(reason.value)
            elif isinstance(reason, ast.JoinedStr) and isinstance(reason.values[-1], ast.Constant):
                found |= {noun + str(reason.values[-1].value) for noun in NOUNS}
    found.add("INTERNAL_ERROR")  # errors.internal_response(): anything unexpected
    return found


def test_every_route_is_in_the_routes_table() -> None:
    table = section("api.md", "Routes")
    documented = re.findall(r"^\| (GET|POST|PUT|DELETE) \| `([^`]+)` \|", table, re.M)
    in_code = [
        (
            route.method,
            route.pattern.pattern.replace(r"\?(.*)$", "?…")
            .replace("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<id>")
            .removesuffix("$"),
        )
        for route in ROUTES
    ]
    assert documented == in_code  # the same routes, in the order they are tried


def test_every_error_reason_is_documented_and_no_other() -> None:
    first_cells = re.findall(r"^\| (`[^|]+)\|", section("api.md", "Errors"), re.M)
    documented = quoted(" ".join(first_cells))
    statuses = {"INVALID_ARGUMENT", "NOT_FOUND", "ALREADY_EXISTS", "FAILED_PRECONDITION"}
    statuses |= {"UNAVAILABLE", "INTERNAL"}
    assert raised_reasons() - documented == set()
    assert documented - raised_reasons() - statuses == set()


def test_every_event_type_is_documented_and_no_other() -> None:
    event_type = r'"((?:customer|accesskey)_(?!manager_)[a-z_]*(?:ed|frozen|expiring))"'
    in_code = set().union(*(re.findall(event_type, s) for s in sources()))
    documented = quoted(section("events.md", "Event types"), r"(?:customer|accesskey)_[a-z_]+")
    assert in_code and in_code == documented


@pytest.mark.parametrize("command", [main.main, cli.main], ids=["daemon", "cli"])
def test_every_setting_is_documented(command: click.Command) -> None:
    text = (DOCS / "configuration.md").read_text()
    for param in command.params:
        if isinstance(param, click.Option):
            for name in [*param.opts, *([param.envvar] if isinstance(param.envvar, str) else [])]:
                assert f"`{name}`" in text, f"{name} is not in docs/configuration.md"


def test_every_metric_is_documented() -> None:
    metrics = set().union(*(re.findall(r'"(customer_manager_\w+)"', s) for s in sources()))
    text = section("configuration.md", "Metrics and health")
    assert len(metrics) > 10
    assert {m for m in metrics if f"`{m}`" not in text} == set()


def test_cache_keys_and_ttl_are_documented() -> None:
    text = section("storage.md", "Keys and values")
    some = uuid.uuid4()
    for key in (cache.customer_key(some), cache.accesskey_key(some), cache.token_key("ab")):
        prefix = key.rsplit(":", 1)[0] + ":"
        assert f"| `{prefix}<" in text, f"{prefix} is not in docs/storage.md"
    assert f"EX {TTL_SECONDS}" in text and TTL_SECONDS == 86400


def test_every_schema_version_is_documented() -> None:
    text = section("storage.md", "Migrations")
    versions = set(schema.MIGRATIONS["mysql"]) | set(schema.MIGRATIONS["sqlite"])
    assert max(versions) == SCHEMA_VERSION
    assert {v for v in versions if f"\n| {v} |" not in text} == set()
