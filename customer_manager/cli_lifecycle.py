"""``customer-control customer`` commands of the lifecycle (docs/lifecycle.md#command-line):
freeze, recover,
set-identity-verification, and ours for embedded mode and operators: the two sweeps.
Registered on the ``customer`` group of cli.py (imported there)."""

from __future__ import annotations

import uuid

import click

from customer_manager.cli import ID, _send, customer
from customer_manager.messages.records import IDENTITY_STATUSES, NIL

_SWEEP_FAILED = "failed to clean up customers: "


def _resolve(value: uuid.UUID) -> uuid.UUID:
    """A UUID flag may not be Nil (upstream ``resolveUUID``)."""
    if value == NIL:
        raise click.UsageError("invalid customer ID format")
    return value


@customer.command("freeze")
@click.option("--id", "id_", type=ID, required=True)
@click.pass_context
def customer_freeze(ctx: click.Context, id_: uuid.UUID) -> None:
    """Freeze an active customer (deleted 30 days later unless recovered)."""
    uri = f"/v1/customers/{_resolve(id_)}/freeze"
    _send(ctx, "POST", uri, failure="failed to freeze customer: ")


@customer.command("recover")
@click.option("--id", "id_", type=ID, required=True)
@click.pass_context
def customer_recover(ctx: click.Context, id_: uuid.UUID) -> None:
    """Recover a frozen customer."""
    uri = f"/v1/customers/{_resolve(id_)}/recover"
    _send(ctx, "POST", uri, failure="failed to recover customer: ")


@customer.command("set-identity-verification")
@click.option("--id", "id_", type=ID, required=True)
@click.option("--status", required=True, help=f"One of {', '.join(IDENTITY_STATUSES)}.")
@click.pass_context
def customer_set_identity(ctx: click.Context, id_: uuid.UUID, status: str) -> None:
    """Set a customer's identity verification status."""
    if status not in IDENTITY_STATUSES:
        raise click.ClickException(
            f"invalid status '{status}': must be one of {', '.join(IDENTITY_STATUSES)}"
        )
    _send(
        ctx,
        "PUT",
        f"/v1/customers/{_resolve(id_)}/identity_verification_status",
        {"status": status},
        failure="failed to update identity verification status: ",
        op="set_identity_verification",
    )


@customer.command("cleanup-unverified")
@click.pass_context
def customer_cleanup_unverified(ctx: click.Context) -> None:
    """Expire sign-ups unverified for an hour (at most 100 per run): prints {"expired":n}."""
    _send(ctx, "POST", "/v1/customers/cleanup_unverified", {}, failure=_SWEEP_FAILED)


@customer.command("cleanup-frozen-expired")
@click.pass_context
def customer_cleanup_frozen(ctx: click.Context) -> None:
    """Anonymize customers frozen for 30 days (at most 1000 per run): prints {"processed":n}."""
    _send(ctx, "POST", "/v1/customers/cleanup_frozen_expired", {}, failure=_SWEEP_FAILED)
