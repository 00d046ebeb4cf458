"""Taking over a Go database (MySQL only): pre-flight check, expand-phase tokens, contract.

The expand/contract plan (README "Switching from the Go service"):

* **Pre-flight** (before any migration step): what would make a step fail is listed, and
  nothing is changed. Today that is active customers sharing an email (Go never checked it on
  update), which the active-email unique index (schema v2) cannot take.
* **Expand** (schema v1–v3): our columns beside Go's, old tokens hashed, plain ``token`` kept.
  Keys a Go replica inserts later have a ``token`` and no ``token_hash``; lookups by token
  match either column (``sqlrows``). With ``expand_plain_tokens`` on, keys we create also get
  their plain ``token`` so a Go replica finds them.
* **Contract** (explicit, ``customer-control db migrate --contract``): hash what is left,
  set every ``token`` to NULL and record the mark ``contract``; from then on nobody writes a
  plain token (``plain_token_writable`` reads the mark in the insert's transaction). It runs
  only when the operator states that no Go replica is left and no key without a hash was
  created within ``quiet`` seconds (a Go replica that still creates keys shows up there).

Functions take a ``Tx`` (one transaction of the caller's storage).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from customer_manager.errors import FailedPrecondition
from customer_manager.messages.records import ts
from customer_manager.storage import schema
from customer_manager.storage.sql import Tx
from customer_manager.storage.sqlrows import read_ts, read_uuid

CONTRACT_MARK = "contract"
DUPLICATE_EMAILS = (
    "SELECT c.email, c.id, c.tm_create FROM customer_customers c JOIN ("
    " SELECT email FROM customer_customers WHERE LIVE(tm_delete) AND email <> ''"
    " GROUP BY email HAVING COUNT(*) > 1) d ON c.email = d.email"
    " WHERE LIVE(c.tm_delete) ORDER BY c.email, c.tm_create, c.id"
)
DUPLICATE_HASHES = (
    "SELECT token_hash, COUNT(*) FROM customer_accesskeys WHERE token_hash IS NOT NULL"
    " GROUP BY token_hash HAVING COUNT(*) > 1 ORDER BY token_hash"
)
TABLE_EXISTS = (
    "SELECT COUNT(*) FROM information_schema.tables"
    " WHERE table_schema = DATABASE() AND table_name = %s"
)
MARKED = "SELECT COUNT(*) FROM customer_schema_marks WHERE name = %s"
MARK = "INSERT IGNORE INTO customer_schema_marks (name, tm_apply) VALUES (%s, %s)"
UNHASHED = (
    "SELECT COUNT(*), MAX(tm_create) FROM customer_accesskeys"
    " WHERE token_hash IS NULL AND token IS NOT NULL AND token <> '' AND tm_create > %s"
)
WITH_TOKEN = "SELECT id FROM customer_accesskeys WHERE token IS NOT NULL"
WIPE_TOKENS = "UPDATE customer_accesskeys SET token = NULL WHERE token IS NOT NULL"


def has_column(tx: Tx, table: str, column: str) -> bool:
    return bool(int(tx.scalar(schema.MYSQL_HAS["column"], (table, column))))


def preflight(tx: Tx) -> None:
    """Raise FailedPrecondition naming every blocker of the pending steps (nothing changed)."""
    if not int(tx.scalar(TABLE_EXISTS, ("customer_customers",))):
        return
    if has_column(tx, "customer_accesskeys", "token_hash"):
        shared = tx.rows(DUPLICATE_HASHES)
        if shared:
            raise FailedPrecondition(
                "migration blocked, nothing was changed: the token-hash unique index cannot"
                f" take {len(shared)} hash(es) shared by several access keys (first:"
                f" {str(shared[0][0])[:12]}…); delete all but one key of each, then run"
                " `customer-control db migrate` again.",
                "MIGRATION_BLOCKED",
            )
    rows = tx.rows(DUPLICATE_EMAILS)
    if not rows:
        return
    groups: dict[str, list[str]] = {}
    for email, row_id, created in rows:
        groups.setdefault(str(email).lower(), []).append(
            f"{read_uuid(row_id)} (created {read_ts(created)})"
        )
    lines = [f"  {email}: {', '.join(ids)}" for email, ids in sorted(groups.items())]
    raise FailedPrecondition(
        f"migration blocked, nothing was changed: {len(groups)} email(s) are used by more than"
        " one active customer, which the active-email unique index cannot take:\n"
        + "\n".join(lines)
        + "\nKeep one customer per email: change the email of the others or delete them (with"
        " the Go service's customer-control, still in charge, e.g. `customer-control customer"
        " delete --id <id>`), then run `customer-control db migrate` again.",
        "MIGRATION_BLOCKED",
    )


def contracted(tx: Tx) -> bool:
    """The contract step has run (or this database never had Go's ``token`` column)."""
    if not has_column(tx, "customer_accesskeys", "token"):
        return True
    return bool(int(tx.scalar(TABLE_EXISTS, ("customer_schema_marks",)))) and bool(
        int(tx.scalar(MARKED, (CONTRACT_MARK,)))
    )


def contract(tx: Tx, quiet_seconds: float) -> list[uuid.UUID]:
    """Hash the remaining plain tokens, wipe ``token`` and record the mark. Returns the ids
    of the keys whose token was wiped (their Go cache entries hold it: drop those)."""
    if not has_column(tx, "customer_accesskeys", "token"):
        return []
    since = ts(datetime.now(UTC) - timedelta(seconds=quiet_seconds))
    recent, newest = tx.rows(UNHASHED, (since,))[0]
    if int(recent):
        raise FailedPrecondition(
            f"contract refused, nothing was changed: {int(recent)} key(s) without a token hash"
            f" were created since {since} (the newest at {read_ts(newest)}): a Go replica is"
            " still creating keys. Scale the Go deployment to 0 and try again.",
            "GO_STILL_WRITING",
        )
    tx.rows(schema.HASH_PLAIN_TOKENS)
    ids = [read_uuid(i) for (i,) in tx.rows(WITH_TOKEN)]
    tx.rows(WIPE_TOKENS)
    tx.rows(MARK, (CONTRACT_MARK, ts(datetime.now(UTC))))
    return ids
