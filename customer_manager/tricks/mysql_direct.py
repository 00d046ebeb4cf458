"""mysql-connector's C connection, used directly for the statements that return no rows.

``CMySQLCursor.execute`` costs ~15–25 µs of CPU per statement here on top of the round trip
(unread-result checks, the parameter regex, ``split_multi_statement``, the tracing wrapper,
result bookkeeping): a create's three INSERTs and COMMIT took ~200–245 µs of CPU through the
cursor against ~175 µs through the connection's ``_cmysql`` (2,000 loops, thread CPU); in
the create bench the storage actors' CPU per create fell from 0.41 / 0.35 to 0.31 / 0.27 ms in
two paired runs (issue 17; mysql-connector-python 26.10.0, pinned ``>=26.10,<26.11`` in
setup.cfg).

``writer`` quotes the parameters with the C extension's own ``convert_to_mysql`` (what the
cursor uses), puts them in place of the ``%s`` marks, sends the statement with ``query`` and
returns the affected row count; a server error is raised as the driver's exception
(``get_mysql_exception``, as the cursor does), so callers handle it alike. Off, or on the
pure-Python protocol, there is no writer and ``Tx`` takes ``cursor.execute`` and ``rowcount``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from mysql.connector.errors import InterfaceError, ProgrammingError, get_mysql_exception

from customer_manager.tricks.switch import Switch

switch = Switch()
enable, disable = switch.enable, switch.disable
Writer = Callable[[str, Sequence[Any]], int]


def enabled() -> bool:
    return switch.on


def writer(conn: Any) -> Writer | None:
    """A function that runs a statement returning no rows on ``conn``'s C connection and
    returns the number of rows it changed; None when the trick is off or ``conn`` is not the
    C extension's."""
    cmysql = getattr(conn, "_cmysql", None) if switch.on else None
    if cmysql is None:
        return None

    from _mysql_connector import MySQLInterfaceError  # type: ignore[import-not-found]

    def direct(sql: str, params: Sequence[Any]) -> int:
        parts = _parts(sql)
        if len(parts) != len(params) + 1:
            raise ProgrammingError(f"{len(parts) - 1} parameter marks for {len(params)} values")
        values = cmysql.convert_to_mysql(*params) if params else ()
        statement = [parts[0]]
        for value, part in zip(values, parts[1:], strict=True):
            statement += (value, part)
        try:
            cmysql.query(b"".join(statement))
        except MySQLInterfaceError as err:
            if hasattr(err, "errno"):
                raise get_mysql_exception(err.errno, msg=err.msg, sqlstate=err.sqlstate) from err
            raise InterfaceError(str(err)) from err
        if cmysql.have_result_set:  # not a write after all: leave the connection clean
            cmysql.consume_result()
        return int(cmysql.affected_rows())

    return direct


@functools.lru_cache(maxsize=1024)
def _parts(sql: str) -> tuple[bytes, ...]:
    """The statement around its ``%s`` marks (the cursor substitutes every ``%s`` alike)."""
    return tuple(sql.encode().split(b"%s"))
