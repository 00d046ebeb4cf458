"""The soak's workload: clients (each its own thread and broker connection) sending a mixed
load, and the history of every request: what was sent, when, and what came back.

A client re-sends a request that got no reply within RESEND_AFTER once, with the same
correlation id (as a retrying caller does); no reply after that is "unanswered". Updates
carry a per-customer increasing counter (in ``detail``); some creates use one of a few
shared emails, so they collide.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from tests.support.amqp import Client, envelope

RESEND_AFTER = 8.0
GIVE_UP_AFTER = 20.0
SHARED_EMAILS = 6
KINDS = ("create", "update", "get", "delete", "key_create", "auth", "key_get")
WEIGHTS = (20, 35, 12, 5, 8, 15, 5)


@dataclass
class Entry:
    """One request of the history. ``target``: the customer or access key it is about;
    ``counter``: an update's counter; ``faults``: the faults active when it was sent."""

    n: int
    client: int
    kind: str
    corr: str
    target: str = ""
    counter: int = 0
    sent: float = 0.0
    replied: float | None = None
    status: int | None = None
    data: Any = None
    resent: bool = False
    faults: list[str] = field(default_factory=list)

    def line(self) -> str:
        took = f"{self.replied - self.sent:.3f}s" if self.replied is not None else "none"
        return (
            f"#{self.n} t={self.sent:.3f} c{self.client} {self.kind} {self.target[:8]}"
            f" counter={self.counter} -> {self.status} ({took}{', resent' if self.resent else ''})"
            f" faults={','.join(self.faults) or '-'}"
        )

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class Registry:
    """What the clients know, shared between their threads."""

    def __init__(self, started: float, faults: Callable[[], list[str]]) -> None:
        self.started, self.active_faults = started, faults
        self.lock = threading.Lock()
        self.history: list[Entry] = []
        self.emails: dict[str, str] = {}  # customer id -> email
        self.live: list[str] = []  # customers no delete was sent for
        self.counters: dict[str, int] = {}
        self.keys: dict[str, str] = {}  # access key id -> token

    def entry(self, client: int, kind: str, target: str = "", counter: int = 0) -> Entry:
        with self.lock:
            item = Entry(len(self.history), client, kind, uuid.uuid4().hex, target, counter)
            item.faults = self.active_faults()
            self.history.append(item)
        return item

    def pick(self, rng: random.Random, pool: list[str]) -> str | None:
        with self.lock:
            if not pool:
                return None
            hot = pool[-4:]  # recent customers are shared by every client: updates race
            return rng.choice(hot if rng.random() < 0.5 else pool)

    def next_counter(self, customer_id: str) -> int:
        with self.lock:
            self.counters[customer_id] = self.counters.get(customer_id, 0) + 1
            return self.counters[customer_id]


class Worker(threading.Thread):
    """One client: its own connection, one request at a time, until ``deadline``."""

    def __init__(self, index: int, url: str, seed: int, registry: Registry, deadline: float):
        super().__init__(daemon=True, name=f"soak-client-{index}")
        self.index, self.url, self.registry, self.deadline = index, url, registry, deadline
        self.rng = random.Random(f"{seed}-client-{index}")
        self.error: BaseException | None = None

    def run(self) -> None:
        client = Client(self.url)
        try:
            while time.monotonic() < self.deadline:
                kind = self.rng.choices(KINDS, WEIGHTS)[0]
                built = getattr(self, f"_build_{kind}")()  # not _delete: Thread has one
                if built is not None:
                    self._send(client, *built)
        except BaseException as exc:  # reported by the runner
            self.error = exc
        finally:
            client.close()

    # -- requests: (entry, method, uri, data) ------------------------------------------------

    def _build_create(self) -> tuple[Entry, str, str, Any]:
        shared = self.rng.random() < 0.3
        tag = self.rng.randrange(SHARED_EMAILS) if shared else uuid.uuid4().hex[:12]
        email = f"soak-{tag}@soak.test"
        entry = self.registry.entry(self.index, "create")
        entry.data = {"email": email}
        return entry, "POST", "/v1/customers", {"email": email, "name": "created"}

    def _build_update(self) -> tuple[Entry, str, str, Any] | None:
        target = self.registry.pick(self.rng, self.registry.live)
        if target is None:
            return None
        counter = self.registry.next_counter(target)
        entry = self.registry.entry(self.index, "update", target, counter)
        email = self.registry.emails[target]
        body = {"email": email, "name": f"n{counter}", "detail": str(counter)}
        return entry, "PUT", f"/v1/customers/{target}", body

    def _build_get(self) -> tuple[Entry, str, str, Any] | None:
        target = self.registry.pick(self.rng, list(self.registry.emails))
        if target is None:
            return None
        return (
            self.registry.entry(self.index, "get", target),
            "GET",
            f"/v1/customers/{target}",
            None,
        )

    def _build_delete(self) -> tuple[Entry, str, str, Any] | None:
        target = self.registry.pick(self.rng, self.registry.live)
        if target is None:
            return None
        with self.registry.lock:
            if target in self.registry.live:
                self.registry.live.remove(target)
        entry = self.registry.entry(self.index, "delete", target)
        return entry, "DELETE", f"/v1/customers/{target}", None

    def _build_key_create(self) -> tuple[Entry, str, str, Any] | None:
        target = self.registry.pick(self.rng, self.registry.live)
        if target is None:
            return None
        entry = self.registry.entry(self.index, "key_create", target)
        return entry, "POST", "/v1/accesskeys", {"customer_id": target, "name": "soak"}

    def _build_auth(self) -> tuple[Entry, str, str, Any] | None:
        key = self.registry.pick(self.rng, list(self.registry.keys))
        if key is None:
            return None
        entry = self.registry.entry(self.index, "auth", key)
        body = {"token": self.registry.keys[key], "deleted": False}
        return entry, "GET", "/v1/accesskeys?page_size=10", body

    def _build_key_get(self) -> tuple[Entry, str, str, Any] | None:
        key = self.registry.pick(self.rng, list(self.registry.keys))
        if key is None:
            return None
        return self.registry.entry(self.index, "key_get", key), "GET", f"/v1/accesskeys/{key}", None

    # -- sending -----------------------------------------------------------------------------

    def _send(self, client: Client, entry: Entry, method: str, uri: str, data: Any) -> None:
        body = envelope(method, uri, data)
        entry.sent = time.monotonic() - self.registry.started
        client.send(body, corr=entry.corr)
        reply = client.wait([entry.corr], RESEND_AFTER).get(entry.corr)
        if reply is None:
            entry.resent = True
            client.send(body, corr=entry.corr)
            reply = client.wait([entry.corr], GIVE_UP_AFTER).get(entry.corr)
        if reply is None:
            return
        entry.replied = time.monotonic() - self.registry.started
        entry.status = int(reply["status_code"])
        client.replies.pop(entry.corr, None)
        if entry.status == 200:
            self._learn(entry, reply.get("data"))

    def _learn(self, entry: Entry, data: Any) -> None:
        with self.registry.lock:
            if entry.kind == "create":
                entry.target = data["id"]
                self.registry.emails[data["id"]] = data["email"]
                self.registry.live.append(data["id"])
            elif entry.kind == "key_create":
                entry.data = {"key": data["id"]}
                self.registry.keys[data["id"]] = data["token"]
            elif entry.kind in ("update", "delete"):
                entry.data = {"tm_update": data.get("tm_update")}
