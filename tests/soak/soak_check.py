"""The soak's checkers: the history (soak_load.Entry) against the final state, each giving
its findings; a finding names the history entries that show it (the excerpt printed with
the seed)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from customer_manager.messages.records import SENTINEL
from tests.soak.soak_load import Entry


@dataclass
class Final:
    """The state after quiescence: rows from MySQL (as JSON dicts, None if missing), the
    service's answers to reads of them, the events seen and the outbox size."""

    customers: dict[str, dict[str, Any] | None]
    keys: dict[str, dict[str, Any] | None]
    reads: dict[tuple[str, str], Any]  # (what, id) -> reply data (status 200) or status
    duplicate_emails: list[tuple[str, int]]
    events: list[dict[str, Any]]
    outbox: int
    bad_exits: list[str]


@dataclass
class Finding:
    what: str
    entries: list[Entry] = field(default_factory=list)


def check(history: list[Entry], final: Final) -> dict[str, list[Finding]]:
    """Every checker's findings (an empty list: the checker passed)."""
    return {
        "unanswered": [Finding(f"no reply to #{e.n}", [e]) for e in history if e.status is None],
        "bad_5xx": [
            Finding(f"#{e.n} answered {e.status}", [e])
            for e in history
            if e.status is not None and e.status >= 500 and e.status != 503
        ],
        "lost_writes": lost_writes(history, final),
        "duplicate_emails": [
            Finding(f"{n} live customers with {m}") for m, n in final.duplicate_emails
        ],
        "missing_events": missing_events(history, final.events),
        "stale_reads": stale_reads(history, final),
        "outbox_after": [Finding(f"{final.outbox} outbox entries left")] if final.outbox else [],
        "bad_exits": [Finding(text) for text in final.bad_exits],
    }


def _index(history: Iterable[Entry]) -> dict[str, list[Entry]]:
    """The entries about each customer or access key."""
    about: dict[str, list[Entry]] = defaultdict(list)
    for e in history:
        about[e.target].append(e)
        key = (e.data or {}).get("key") if isinstance(e.data, dict) else None
        if key:
            about[key].append(e)
    return about


def lost_writes(history: list[Entry], final: Final) -> list[Finding]:
    found: list[Finding] = []
    about = _index(history)
    for e in history:
        if e.status != 200:
            continue
        row = final.customers.get(e.target) if e.kind in ("create", "delete") else None
        if e.kind == "create" and row is None:
            found.append(Finding(f"created customer {e.target} is missing", [e]))
        if e.kind == "delete" and (row is None or row["tm_delete"] == SENTINEL):
            found.append(Finding(f"deleted customer {e.target} is live", about[e.target]))
        if e.kind == "key_create" and final.keys.get(e.data["key"]) is None:
            found.append(Finding(f"created access key {e.data['key']} is missing", [e]))
    by_customer: dict[str, list[Entry]] = defaultdict(list)
    for e in history:
        if e.kind == "update":
            by_customer[e.target].append(e)
    for customer_id, updates in by_customer.items():
        found += _older_counter(customer_id, updates, final.customers.get(customer_id), history)
    return found


def _older_counter(
    customer_id: str, updates: list[Entry], row: dict[str, Any] | None, history: list[Entry]
) -> list[Finding]:
    """The stored counter is older than an acknowledged update if the update that wrote it
    was acknowledged before that other update was sent (so it cannot have come after)."""
    stored = int(row.get("detail") or 0) if row else 0
    writer = next((u for u in updates if u.counter == stored), None)
    if stored == 0:
        done_at = 0.0  # the create: acknowledged before any update could be sent
    elif writer is None or writer.status != 200 or writer.replied is None:
        return []  # written by an update whose outcome the client does not know
    else:
        done_at = writer.replied
    newer = [u for u in updates if u.status == 200 and u.counter != stored and u.sent > done_at]
    if not newer:
        return []
    shown = sorted([*newer[:3], *([writer] if writer else [])], key=lambda e: e.n)
    text = f"customer {customer_id} holds counter {stored}, acknowledged later: {newer[0].counter}"
    return [Finding(text, shown)]


def _event_id(event: dict[str, Any]) -> tuple[str, str, str]:
    data = event.get("data") or {}
    return event.get("type", ""), str(data.get("id", "")), str(data.get("detail", ""))


def missing_events(history: list[Entry], events: list[dict[str, Any]]) -> list[Finding]:
    seen = {_event_id(e) for e in events}
    by_record = {(kind, record) for kind, record, _ in seen}
    found = []
    for e in history:
        if e.status != 200:
            continue
        wanted = {
            "create": ("customer_created", e.target, ""),
            "update": ("customer_updated", e.target, str(e.counter)),
            "delete": ("customer_deleted", e.target, None),
            "key_create": ("accesskey_created", (e.data or {}).get("key", ""), ""),
        }.get(e.kind)
        if wanted is None:
            continue
        kind, target, detail = wanted
        present = (kind, target) in by_record if detail is None else wanted in seen
        if not present:
            found.append(Finding(f"no {kind} event for #{e.n}", [e]))
    return found


def duplicate_events(events: list[dict[str, Any]]) -> int:
    return sum(n - 1 for n in Counter(_event_id(e) for e in events).values())


def stale_reads(history: list[Entry], final: Final) -> list[Finding]:
    """After quiescence the service's answer to a read must be the row in MySQL."""
    found, about = [], _index(history)
    for (what, target), answer in final.reads.items():
        row = (final.customers if what == "customer" else final.keys).get(target)
        if what == "auth":
            live = row is not None and row["tm_delete"] == SENTINEL
            expected: Any = [row["id"]] if live else []
            answer = [k["id"] for k in answer] if isinstance(answer, list) else answer
        else:
            expected = row
        if what == "key":  # the final auth reads write it (docs/api.md#access-key-last-used)
            answer, expected = _unused(answer), _unused(expected)
        if answer != expected:
            found.append(
                Finding(
                    f"{what} {target}: served {answer!r}, stored {expected!r}",
                    about[target][-8:],
                )
            )
    return found


def _unused(record: Any) -> Any:
    """A key record without ``tm_last_used``, which the reads themselves may move."""
    if isinstance(record, dict):
        return {k: v for k, v in record.items() if k != "tm_last_used"}
    return record
