"""``customer-control``: the operations of the RPC API from a shell
(docs/configuration.md#customer-control).

Each command builds the same Request an RPC caller would send, hands it to a local actor
system (router, pools, storage, cache, publisher; no consumer) and prints the reply's data
as indented JSON on stdout. Exit codes: 0 success, 1 failed operation, 2 usage error.
"""

from __future__ import annotations

import logging
import sys
import uuid
from typing import Any, Literal, cast

import click
import msgspec

from customer_manager import tricks
from customer_manager.cli_params import Duration, Text
from customer_manager.config import Settings, embedded_store
from customer_manager.config import check as check_settings
from customer_manager.flags import settings_options
from customer_manager.messages.ops import OpName
from customer_manager.oneshot import make_request, run_request, schema_command

ID = click.UUID
SHORT, LONG = Text(255), Text(16383)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@settings_options
@click.option(
    "--rabbitmq_address",
    envvar="RABBITMQ_ADDRESS",
    default="",
    show_envvar=True,
    help="AMQP URI. Empty: no broker; events stay in the outbox.",
)
@click.option(
    "--agent_check",
    type=click.Choice(["required", "off"]),
    default=None,
    help="Check agent-manager usernames on create [default: required with a broker, off without].",
)
@click.option(
    "--without_redis",
    is_flag=True,
    help="Allow a MySQL DATABASE_DSN without REDIS_ADDRESS (no daemon caches in Redis).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log at INFO on stderr.")
@click.pass_context
def main(
    ctx: click.Context, /, verbose: bool, agent_check: str | None, without_redis: bool, **opts: Any
) -> None:
    """Manage VoIPbin customers and access keys."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    tricks.install()
    default = "required" if opts["rabbitmq_address"] else "off"
    opts["database_dsn"], opts["sqlite_path"] = embedded_store(
        opts["database_dsn"], opts["sqlite_path"]
    )
    ctx.meta["without_redis"] = without_redis
    ctx.obj = Settings(
        agent_check=cast(Literal["required", "off"], agent_check or default),
        customer_workers=1,
        accesskey_workers=1,
        storage_workers=1,
        cache_workers=1,
        **opts,
    )
    try:
        check_settings(ctx.obj)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


def _guard_cache(ctx: click.Context) -> None:
    """Writing MySQL without the daemons' Redis leaves them serving the old record for up to
    24 h (the cache TTL): refuse unless told (``--without_redis``)."""
    settings: Settings = ctx.obj
    if not settings.database_dsn or settings.redis_address:
        return
    if not ctx.find_root().meta.get("without_redis"):
        raise click.ClickException(
            "DATABASE_DSN is set but REDIS_ADDRESS is not: the daemons would serve the old"
            " record from Redis for up to 24 h; set REDIS_ADDRESS and REDIS_DATABASE as the"
            " daemons have them, or pass --without_redis if no daemon uses a Redis"
        )
    logging.getLogger(__name__).warning("no REDIS_ADDRESS: cached records are not refreshed")


def _send(
    ctx: click.Context,
    method: str,
    uri: str,
    data: Any = None,
    *,
    failure: str = "",
    op: OpName | None = None,
) -> None:
    """Run the request, print the reply's data; ``failure`` prefixes an error message."""
    _guard_cache(ctx)
    payload = run_request(ctx.obj, make_request(method, uri, data), op=op, failure=failure)
    click.echo(msgspec.json.format(payload, indent=2).decode())


@main.group()
def customer() -> None:
    """Customers (tenants)."""


_customer_options = [
    click.option("--name", type=SHORT, default=""),
    click.option("--detail", type=LONG, default=""),
    click.option("--phone-number", "phone_number", type=SHORT, default=""),
    click.option("--address", type=Text(1024), default=""),
    click.option(
        "--webhook-method", "webhook_method", type=SHORT, default="POST", show_default=True
    ),
    click.option("--webhook-uri", "webhook_uri", type=Text(1023), default=""),
]


def customer_fields(func: Any) -> Any:
    for option in reversed(_customer_options):
        func = option(func)
    return func


@customer.command("create")
@click.option("--email", type=SHORT, required=True)
@customer_fields
@click.pass_context
def customer_create(ctx: click.Context, /, **fields: str) -> None:
    """Create a customer."""
    _send(ctx, "POST", "/v1/customers", dict(fields))


@customer.command("get")
@click.option("--id", "id_", type=ID, required=True)
@click.pass_context
def customer_get(ctx: click.Context, id_: uuid.UUID) -> None:
    """Show one customer (deleted ones too)."""
    _send(ctx, "GET", f"/v1/customers/{id_}")


@customer.command("list")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--token", default="", help="Page token: tm_create of the last row seen.")
@click.pass_context
def customer_list(ctx: click.Context, limit: int, token: str) -> None:
    """List customers, newest first (deleted ones too)."""
    query = _query(page_size=str(limit), page_token=token)
    _send(ctx, "GET", f"/v1/customers?{query}")


@customer.command("update")
@click.option("--id", "id_", type=ID, required=True)
@click.option("--email", type=SHORT, required=True)
@customer_fields
@click.pass_context
def customer_update(ctx: click.Context, /, id_: uuid.UUID, **fields: str) -> None:
    """Replace a customer's basic info (omitted flags store empty values)."""
    _send(ctx, "PUT", f"/v1/customers/{id_}", dict(fields))


@customer.command("update-billing-account")
@click.option("--id", "id_", type=ID, required=True)
@click.option("--billing-account-id", "billing_account_id", type=ID, required=True)
@click.pass_context
def customer_update_billing(
    ctx: click.Context, id_: uuid.UUID, billing_account_id: uuid.UUID
) -> None:
    """Set a customer's billing account."""
    body = {"billing_account_id": str(billing_account_id)}
    _send(ctx, "PUT", f"/v1/customers/{id_}/billing_account_id", body)


@customer.command("delete")
@click.option("--id", "id_", type=ID, required=True)
@click.pass_context
def customer_delete(ctx: click.Context, id_: uuid.UUID) -> None:
    """Soft-delete a customer and its access keys."""
    _send(ctx, "DELETE", f"/v1/customers/{id_}")


@main.group()
def accesskey() -> None:
    """Access keys (API tokens)."""


@accesskey.command("create")
@click.option("--customer-id", "customer_id", type=ID, required=True)
@click.option("--name", type=SHORT, default="", help="Required.")
@click.option("--detail", type=LONG, default="")
@click.option(
    "--expire", type=Duration(), default="0", help="Seconds or a duration like 720h; 0 means never."
)
@click.pass_context
def accesskey_create(
    ctx: click.Context, customer_id: uuid.UUID, name: str, detail: str, expire: int
) -> None:
    """Create an access key; the token is printed this once."""
    if not name:
        raise click.ClickException("invalid name: Name is required")
    body = {"customer_id": str(customer_id), "name": name, "detail": detail, "expire": expire}
    _send(ctx, "POST", "/v1/accesskeys", body, failure="failed to create accesskey: ")


@accesskey.command("get")
@click.option("--id", "id_", type=ID, required=True)
@click.pass_context
def accesskey_get(ctx: click.Context, id_: uuid.UUID) -> None:
    """Show one access key (never its token)."""
    _send(ctx, "GET", f"/v1/accesskeys/{id_}", failure="failed to retrieve accesskey: ")


@accesskey.command("list")
@click.option("--customer-id", "customer_id", type=ID, default=None)
@click.option("--size", type=click.IntRange(1, 1000), default=10, show_default=True)
@click.option("--token", "page_token", default="", help="Page token (as upstream's CLI).")
@click.option("--api-token", "api_token", default="", help="Find the key of this API token.")
@click.pass_context
def accesskey_list(
    ctx: click.Context, customer_id: uuid.UUID | None, size: int, page_token: str, api_token: str
) -> None:
    """List access keys, newest first (deleted ones too)."""
    filters: dict[str, str] = {}
    if customer_id:
        filters["customer_id"] = str(customer_id)
    if api_token:
        filters["token"] = api_token
    query = _query(page_size=str(size), page_token=page_token)
    failure = "failed to retrieve accesskeys: "
    _send(ctx, "GET", f"/v1/accesskeys?{query}", filters, failure=failure)


@accesskey.command("update")
@click.option("--id", "id_", type=ID, required=True)
@click.option("--name", type=SHORT, default="")
@click.option("--detail", type=LONG, default="")
@click.pass_context
def accesskey_update(ctx: click.Context, id_: uuid.UUID, name: str, detail: str) -> None:
    """Replace an access key's name and detail."""
    body = {"name": name, "detail": detail}
    _send(ctx, "PUT", f"/v1/accesskeys/{id_}", body, failure="failed to update accesskey: ")


@accesskey.command("delete")
@click.option("--id", "id_", type=ID, required=True)
@click.pass_context
def accesskey_delete(ctx: click.Context, id_: uuid.UUID) -> None:
    """Soft-delete an access key."""
    _send(ctx, "DELETE", f"/v1/accesskeys/{id_}", failure="failed to delete accesskey: ")


@main.group()
def db() -> None:
    """The database schema."""


@db.command("migrate")
@click.option(
    "--contract",
    is_flag=True,
    help="After migrating: hash the remaining plain tokens and wipe Go's token column.",
)
@click.option(
    "--go-stopped",
    "go_stopped",
    is_flag=True,
    help="With --contract: I confirm no Go customer-manager (daemon or CLI) is left running.",
)
@click.option(
    "--quiet",
    type=Duration(),
    default="1h",
    show_default=True,
    help="With --contract: refuse if a key without a hash (written by Go) is this recent.",
)
@click.pass_context
def db_migrate(ctx: click.Context, contract: bool, go_stopped: bool, quiet: int) -> None:
    """Apply pending migrations (idempotent), revoke the keys of deleted customers, print
    the schema version; with --contract, end the switch from the Go service."""
    from customer_manager import migration

    if contract and not go_stopped:
        raise click.UsageError(
            "--contract wipes the plain tokens Go looks keys up by: stop every Go replica,"
            " then confirm with --go-stopped"
        )
    _guard_cache(ctx)
    for line in migration.migrate(ctx.obj):
        click.echo(line)
    if contract:
        click.echo(migration.contract(ctx.obj, quiet))


@db.command("version")
@click.pass_context
def db_version(ctx: click.Context) -> None:
    """Print the applied and the expected schema version."""
    click.echo(schema_command(ctx.obj, migrate=False))


def _query(**params: str) -> str:
    from urllib.parse import urlencode

    return urlencode(params)


from customer_manager import cli_keys, cli_lifecycle  # noqa: E402  (registers their commands)

__all__ = ["cli_keys", "cli_lifecycle", "main"]
