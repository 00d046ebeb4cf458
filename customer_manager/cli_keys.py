"""``customer-control accesskey`` commands for key rotation and expiry
(docs/api.md#access-key-usage-and-rotation): rotate, list-expiring, and for embedded mode and
operators the two sweeps. Registered on the ``accesskey`` group of cli.py (imported there)."""

from __future__ import annotations

import uuid

import click

from customer_manager.cli import ID, _query, _send, accesskey
from customer_manager.cli_params import Duration
from customer_manager.messages.bodies import MAX_GRACE
from customer_manager.messages.expiring import DEFAULT_WITHIN, MAX_WITHIN


def _grace(value: int) -> int:
    if not 0 <= value <= MAX_GRACE:
        raise click.BadParameter(
            f"must be 0 to {MAX_GRACE} seconds (30 days)", param_hint="--grace"
        )
    return value


def _within(value: int) -> int:
    if not 1 <= value <= MAX_WITHIN:
        raise click.BadParameter(f"must be 1 to {MAX_WITHIN} seconds", param_hint="--within")
    return value


@accesskey.command("rotate")
@click.option("--id", "id_", type=ID, required=True)
@click.option(
    "--grace", type=Duration(), default="24h", show_default=True, help="0 revokes at once."
)
@click.option("--expire", type=Duration(), default="0", help="The new key's; 0 means never.")
@click.pass_context
def accesskey_rotate(ctx: click.Context, id_: uuid.UUID, grace: int, expire: int) -> None:
    """Replace a key: prints the new key with its token (this once) and the old one, which
    keeps working for the grace period."""
    body = {"grace": _grace(grace), "expire": expire}
    _send(ctx, "POST", f"/v1/accesskeys/{id_}/rotate", body, failure="failed to rotate accesskey: ")


@accesskey.command("list-expiring")
@click.option("--within", type=Duration(), default=str(DEFAULT_WITHIN), help="Default 168h.")
@click.option("--customer-id", "customer_id", type=ID, default=None)
@click.option("--size", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--page-token", "page_token", default="", help="<tm_expire>|<id> of the last key.")
@click.pass_context
def accesskey_list_expiring(
    ctx: click.Context, within: int, customer_id: uuid.UUID | None, size: int, page_token: str
) -> None:
    """Live keys expiring within the window, soonest first."""
    query = _query(within=str(_within(within)), page_size=str(size), page_token=page_token)
    filters = {"customer_id": str(customer_id)} if customer_id else {}
    failure = "failed to retrieve accesskeys: "
    _send(ctx, "GET", f"/v1/accesskeys/expiring?{query}", filters, failure=failure)


@accesskey.command("cleanup-rotated")
@click.pass_context
def accesskey_cleanup_rotated(ctx: click.Context) -> None:
    """Delete the old keys of rotations whose grace period is over: prints {"deleted":n}."""
    uri = "/v1/accesskeys/cleanup_rotated"
    _send(ctx, "POST", uri, {}, failure="failed to clean up accesskeys: ")


@accesskey.command("notify-expiring")
@click.option("--within", type=Duration(), default=str(DEFAULT_WITHIN), help="Default 168h.")
@click.pass_context
def accesskey_notify_expiring(ctx: click.Context, within: int) -> None:
    """Publish accesskey_expiring once per key expiring within the window: prints
    {"notified":n}."""
    body = {"within": _within(within)}
    _send(ctx, "POST", "/v1/accesskeys/notify_expiring", body, failure="failed to notify: ")
