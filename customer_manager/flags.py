"""The click options for Settings that the daemon and the CLI share
(docs/configuration.md#settings).

Flag names keep the Go underscores; each reads the Go environment variable. Only these
settings come from the environment (the Go CLI's "any flag from env" quirk is not kept).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from customer_manager.config import (
    DEFAULT_EMAIL_VERIFY_BASE_URL,
    DEFAULT_SQLITE_PATH,
    check_base_url,
)
from customer_manager.messages import codec

F = TypeVar("F", bound=Callable[..., Any])

_SHARED: list[Callable[[F], F]] = [
    click.option(
        "--database_dsn",
        envvar="DATABASE_DSN",
        default="",
        show_envvar=True,
        help="go-sql-driver DSN, e.g. user:pass@tcp(host:3306)/bin_manager, or sqlite:PATH "
        "for the embedded SQLite store.",
    ),
    click.option(
        "--sqlite_path",
        "--db",
        envvar="CUSTOMER_MANAGER_DB",
        default=DEFAULT_SQLITE_PATH,
        show_default=True,
        show_envvar=True,
        help="SQLite file used when DATABASE_DSN is empty.",
    ),
    click.option(
        "--redis_address",
        envvar="REDIS_ADDRESS",
        default="",
        show_envvar=True,
        help="host:port. Empty: an in-process cache.",
    ),
    click.option("--redis_password", envvar="REDIS_PASSWORD", default="", show_envvar=True),
    click.option(
        "--redis_database", envvar="REDIS_DATABASE", default=0, type=int, show_envvar=True
    ),
    click.option(
        "--email_verify_base_url",
        envvar="EMAIL_VERIFY_BASE_URL",
        default=DEFAULT_EMAIL_VERIFY_BASE_URL,
        show_default=True,
        show_envvar=True,
        callback=lambda _ctx, _param, value: _base_url(value),
        help="Prefix of the email verification link (an absolute http(s) URL).",
    ),
    click.option(
        "--wire_profile",
        envvar="WIRE_PROFILE",
        default="seed",
        show_default=True,
        show_envvar=True,
        callback=lambda _ctx, _param, value: _profile(value),
        help="seed: the wire of the seed-era Go service; current: today's VoIPbin "
        "(docs/profiles.md). One profile per deployment.",
    ),
    click.option(
        "--billing_account_check",
        envvar="BILLING_ACCOUNT_CHECK",
        is_flag=True,
        default=False,
        help="Ask billing-manager before setting a billing account.",
    ),
    click.option(
        "--expand_plain_tokens",
        envvar="EXPAND_PLAIN_TOKENS",
        is_flag=True,
        default=False,
        help="While Go replicas share the database: new keys also get Go's plain token "
        "(until `customer-control db migrate --contract`).",
    ),
]


def _base_url(value: str) -> str:
    """docs/lifecycle.md#settings: checked at start; a bad value is one clear line and exit 1."""
    try:
        return check_base_url(value)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


def _profile(value: str) -> str:
    """docs/profiles.md: an unknown profile is one clear line and exit 1."""
    try:
        return codec.check(value)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


def settings_options(func: F) -> F:
    """Decorate a click command with the shared settings options."""
    for option in reversed(_SHARED):
        func = option(func)
    return func
