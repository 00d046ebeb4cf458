"""Scenarios: what each request of a run looks like, and the data they need.

A scenario is a name plus a ``Seed`` (customer ids and access-key tokens created through
RPC before the runs). ``body_factory`` turns them into a function ``seq -> request body``;
it runs inside the load generator process, so everything here must be picklable and cheap.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from bench.amqp import RpcClient, envelope

SCENARIOS = ("get", "auth", "create", "mix")
AGENT_SCENARIOS = ("create_agent",)  # run on a second daemon with --agent_check required
EXTRA_SCENARIOS = ("auth1",)  # run only when named (bench/lastused.py)
DESCRIPTIONS = {
    "echo": "bare pika echo server: fixed reply, no storage",
    "get": "cache-hit `GET /v1/customers/<id>` over the seeded customers",
    "auth": "api-manager auth: `GET /v1/accesskeys?page_size=1` data `{token, deleted:false}`",
    "auth1": "the auth request of `auth` for one key only (every request is a use of it)",
    "create": "`POST /v1/customers`, a unique email per request",
    "mix": "50 % get, 40 % auth, 10 % create (90 % reads)",
    "create_agent": "`POST /v1/customers` on a daemon with `--agent_check required`: every "
    "create first asks a fake agent-manager (bench/echo.py, answers `[]` at once) over RPC",
}
Bodies = Callable[[int], bytes]
FLOOR_MODES = ("seq", "batch", "group", "rows")  # bench/floor.py --mode


def floor_base(name: str) -> str:
    """The scenario a floor run mirrors: ``floor_get_batch`` → ``get``."""
    name = name.removeprefix("floor_")
    for mode in FLOOR_MODES:
        name = name.removesuffix(f"_{mode}")
    return name


@dataclasses.dataclass(frozen=True)
class Seed:
    customer_ids: list[str]
    tokens: list[str]
    run_id: str


def _get(seed: Seed) -> Bodies:
    bodies = [envelope("GET", f"/v1/customers/{cid}") for cid in seed.customer_ids]
    return lambda seq: bodies[seq % len(bodies)]


def _auth(seed: Seed) -> Bodies:
    bodies = [
        envelope("GET", "/v1/accesskeys?page_size=1", {"token": t, "deleted": False})
        for t in seed.tokens
    ]
    return lambda seq: bodies[seq % len(bodies)]


def _create(seed: Seed, tag: str) -> Bodies:
    def body(seq: int) -> bytes:
        email = f"b{seed.run_id}{tag}{seq}@bench.example.com"
        return envelope("POST", "/v1/customers", {"email": email, "name": f"bench {seq}"})

    return body


def _mix(seed: Seed, tag: str) -> Bodies:
    get, auth, create = _get(seed), _auth(seed), _create(seed, tag)

    def body(seq: int) -> bytes:
        slot = seq % 10
        if slot < 5:
            return get(seq)
        return auth(seq) if slot < 9 else create(seq)

    return body


def body_factory(scenario: str, seed: Seed, tag: str = "") -> Bodies:
    """``tag`` keeps emails unique across runs of the same scenario. ``floor_<name>`` and
    ``floor_<name>_<mode>`` (bench/floor.py) send the requests of ``<name>``."""
    if scenario.startswith("floor_"):
        scenario = floor_base(scenario)
    if scenario == "get":
        return _get(seed)
    if scenario == "auth":
        return _auth(seed)
    if scenario == "auth1":
        return _auth(dataclasses.replace(seed, tokens=seed.tokens[:1]))
    if scenario in ("create", "create_agent"):
        return _create(seed, tag)
    if scenario == "mix":
        return _mix(seed, tag)
    known = ", ".join(SCENARIOS + AGENT_SCENARIOS + EXTRA_SCENARIOS)
    raise ValueError(f"unknown scenario {scenario!r}; choose from {known}")


def _check(replies: list[dict[str, Any]], what: str) -> list[dict[str, Any]]:
    bad = [r for r in replies if r.get("status_code") != 200]
    if bad:
        raise RuntimeError(f"seeding {what}: {len(bad)} failed, e.g. {bad[0]}")
    return [r["data"] for r in replies]


def seed_data(client: RpcClient, run_id: str, count: int, batch: int = 50) -> Seed:
    """Create ``count`` customers and one access key each, through RPC, ``batch`` at a time."""
    ids: list[str] = []
    tokens: list[str] = []
    for start in range(0, count, batch):
        n = min(batch, count - start)
        customers = client.call_many(
            [
                envelope(
                    "POST",
                    "/v1/customers",
                    {"email": f"seed{run_id}n{start + i}@bench.example.com", "name": "seed"},
                )
                for i in range(n)
            ]
        )
        new_ids = [c["id"] for c in _check(customers, "customers")]
        keys = client.call_many(
            [
                envelope("POST", "/v1/accesskeys", {"customer_id": cid, "name": "bench"})
                for cid in new_ids
            ]
        )
        ids += new_ids
        tokens += [k["token"] for k in _check(keys, "access keys")]
    return Seed(customer_ids=ids, tokens=tokens, run_id=run_id)
