"""``customer-control db migrate``: schema steps, old data brought to our rules, contract.

1. The schema migrations (``storage.schema``; on MySQL after ``takeover.preflight``).
2. Keys of deleted tenants revoked (docs/storage.md#soft-delete): a Go-era database keeps
   the active keys of customers Go deleted. Storage finds those customers (one query); each
   is deleted again through the
   router, which revokes its remaining keys with their ``accesskey_deleted`` events and
   refreshes the cache, as a delete over RPC does. Idempotent; re-run by every ``db migrate``.
3. With ``contract``: ``takeover.contract`` (plain tokens hashed and wiped), then the Go
   cache entries of those keys dropped (Go cached the plain token in them).
"""

from __future__ import annotations

import logging
import uuid

import click
import msgspec

from customer_manager.config import Settings
from customer_manager.errors import ServiceError
from customer_manager.messages.records import Accesskey
from customer_manager.oneshot import Send, local_system, make_request, schema_command

log = logging.getLogger(__name__)

PAGE = 1000


def migrate(settings: Settings) -> list[str]:
    """Steps 1 and 2; one line of report per step."""
    report = [schema_command(settings, migrate=True)]
    if settings.wire_profile == "current":  # docs/profiles.md#schema: no row is rewritten
        owners = _orphaned_key_owners(settings)
        if owners:
            report.append(
                f"left {len(owners)} deleted customer(s) with active keys as they are (first:"
                f" {owners[0]}); `customer-control customer delete --id <id>` revokes them"
            )
        return report
    with local_system(settings) as send:
        revoked, tenants = revoke_deleted_tenants_keys(settings, send)
    report.append(f"revoked {revoked} active key(s) of {tenants} deleted customer(s)")
    return report


def _orphaned_key_owners(settings: Settings) -> list[uuid.UUID]:
    from customer_manager.storage import open_storage

    storage = open_storage(settings)
    try:
        owners: list[uuid.UUID] = storage.orphaned_key_owners()
    finally:
        storage.close()
    return owners


def contract(settings: Settings, quiet_seconds: float) -> str:
    """Step 3 (after ``migrate``)."""
    from customer_manager.actors.cache import accesskey_key
    from customer_manager.bootstrap import default_cache
    from customer_manager.storage import open_storage

    storage = open_storage(settings)
    if not settings.database_dsn or not hasattr(storage, "contract"):
        storage.close()
        return "contract: nothing to do (no Go schema in the embedded store)"
    try:
        wiped: list[uuid.UUID] = storage.contract(quiet_seconds)
    except ServiceError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        storage.close()
    cache = default_cache(settings)
    for key_id in wiped:
        cache.delete(accesskey_key(key_id))
    cache.close()
    return f"contract: {len(wiped)} plain token(s) wiped; only hashes remain"


def revoke_deleted_tenants_keys(settings: Settings, send: Send) -> tuple[int, int]:
    """(keys revoked, customers they belonged to)."""
    owners = _orphaned_key_owners(settings)
    revoked = 0
    for owner in owners:
        filters = {"customer_id": str(owner), "deleted": False}
        keys = msgspec.json.decode(
            send(make_request("GET", f"/v1/accesskeys?page_size={PAGE}", filters)),
            type=list[Accesskey],
        )
        send(make_request("DELETE", f"/v1/customers/{owner}"))
        log.info("revoked %d key(s) of deleted customer %s", len(keys), owner)
        revoked += len(keys)
    return revoked, len(owners)
