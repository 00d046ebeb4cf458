"""``customer-control``: the operations of the RPC API from a shell
(docs/configuration.md#customer-control).

Each command builds the same Request an RPC caller would send, hands it to a local actor
system (router, pools, storage, cache, publisher; no consumer) and prints the reply's data
as indented JSON on stdout. Exit codes: 0 success, 1 failed operation, 2 usage error.
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
from typing import Any, Literal, cast

import click
import msgspec

from customer_manager import tricks
from customer_manager.config import Settings
from customer_manager.flags import settings_options
from customer_manager.messages import gojson
from customer_manager.messages.wire import JSON, Request
from customer_manager.oneshot import run_request, schema_command

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|m|s|ms)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


class Duration(click.ParamType):  # type: ignore[type-arg]
    """Seconds as an integer (``3600``) or a Go duration (``720h``, ``1h30m``)."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        text = str(value).strip()
        if re.fullmatch(r"-?\d+", text):
            return int(text)
        parts = _DURATION.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            self.fail(f"{text!r} is neither seconds nor a duration like 720h or 1h30m", param, ctx)
        return int(sum(float(n) * _UNIT_SECONDS[u] for n, u in parts))


ID = click.UUID


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
@click.option("-v", "--verbose", is_flag=True, help="Log at INFO on stderr.")
@click.pass_context
def main(ctx: click.Context, /, verbose: bool, agent_check: str | None, **opts: Any) -> None:
    """Manage VoIPbin customers and access keys."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    tricks.install()
    default = "required" if opts["rabbitmq_address"] else "off"
    check = cast(Literal["required", "off"], agent_check or default)
    ctx.obj = Settings(
        agent_check=check,
        customer_workers=1,
        accesskey_workers=1,
        storage_workers=1,
        cache_workers=1,
        **opts,
    )


def _send(ctx: click.Context, method: str, uri: str, data: Any = None) -> None:
    raw = msgspec.Raw(gojson.encode(data)) if data is not None else msgspec.Raw(b"")
    request = Request(
        uri=uri, method=method, publisher="customer-control", data_type=JSON, data=raw
    )
    payload = run_request(ctx.obj, request)
    click.echo(msgspec.json.format(payload, indent=2).decode())


@main.group()
def customer() -> None:
    """Customers (tenants)."""


_customer_options = [
    click.option("--name", default=""),
    click.option("--detail", default=""),
    click.option("--phone-number", "phone_number", default=""),
    click.option("--address", default=""),
    click.option("--webhook-method", "webhook_method", default="POST", show_default=True),
    click.option("--webhook-uri", "webhook_uri", default=""),
]


def customer_fields(func: Any) -> Any:
    for option in reversed(_customer_options):
        func = option(func)
    return func


@customer.command("create")
@click.option("--email", required=True)
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
@click.option("--email", required=True)
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
@click.option("--name", default="")
@click.option("--detail", default="")
@click.option(
    "--expire", type=Duration(), default="0", help="Seconds or a duration like 720h; 0 means never."
)
@click.pass_context
def accesskey_create(
    ctx: click.Context, customer_id: uuid.UUID, name: str, detail: str, expire: int
) -> None:
    """Create an access key; the token is printed this once."""
    body = {"customer_id": str(customer_id), "name": name, "detail": detail, "expire": expire}
    _send(ctx, "POST", "/v1/accesskeys", body)


@accesskey.command("get")
@click.option("--id", "id_", type=ID, required=True)
@click.pass_context
def accesskey_get(ctx: click.Context, id_: uuid.UUID) -> None:
    """Show one access key (never its token)."""
    _send(ctx, "GET", f"/v1/accesskeys/{id_}")


@accesskey.command("list")
@click.option("--customer-id", "customer_id", type=ID, default=None)
@click.option("--size", type=click.IntRange(1, 1000), default=10, show_default=True)
@click.option("--token", default="", help="Find the key of this token.")
@click.option("--page-token", "page_token", default="")
@click.pass_context
def accesskey_list(
    ctx: click.Context, customer_id: uuid.UUID | None, size: int, token: str, page_token: str
) -> None:
    """List access keys, newest first."""
    filters: dict[str, str] = {}
    if customer_id:
        filters["customer_id"] = str(customer_id)
    if token:
        filters["token"] = token
    query = _query(page_size=str(size), page_token=page_token)
    _send(ctx, "GET", f"/v1/accesskeys?{query}", filters)


@accesskey.command("update")
@click.option("--id", "id_", type=ID, required=True)
@click.option("--name", default="")
@click.option("--detail", default="")
@click.pass_context
def accesskey_update(ctx: click.Context, id_: uuid.UUID, name: str, detail: str) -> None:
    """Replace an access key's name and detail."""
    _send(ctx, "PUT", f"/v1/accesskeys/{id_}", {"name": name, "detail": detail})


@accesskey.command("delete")
@click.option("--id", "id_", type=ID, required=True)
@click.pass_context
def accesskey_delete(ctx: click.Context, id_: uuid.UUID) -> None:
    """Soft-delete an access key."""
    _send(ctx, "DELETE", f"/v1/accesskeys/{id_}")


@main.group()
def db() -> None:
    """The database schema."""


@db.command("migrate")
@click.pass_context
def db_migrate(ctx: click.Context) -> None:
    """Apply pending migrations (idempotent) and print the schema version."""
    click.echo(schema_command(ctx.obj, migrate=True))


@db.command("version")
@click.pass_context
def db_version(ctx: click.Context) -> None:
    """Print the applied and the expected schema version."""
    click.echo(schema_command(ctx.obj, migrate=False))


def _query(**params: str) -> str:
    from urllib.parse import urlencode

    return urlencode(params)
