"""``python -m customer_manager._launch MODULE [ARGS...]``: run MODULE as ``python -m`` would,
with the MySQL C extension loaded first (``customer_manager._cext``). ``make test`` runs
pytest so: pytest imports hashlib before any conftest, and its libcrypto would block the
extension, leaving the in-process daemons of the integration tests on the pure-Python driver.
"""

from __future__ import annotations

import runpy
import sys

import customer_manager  # noqa: F401  (loads the extension)


def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit("usage: python -m customer_manager._launch MODULE [ARGS...]")
    sys.argv = sys.argv[1:]
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
