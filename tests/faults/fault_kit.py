"""Moved to ``tests.support.faults``; this alias keeps old imports working until the branches
open at the move have merged, then goes."""

from tests.support.faults import *  # noqa: F403
from tests.support.waiting import wait_until  # noqa: F401
