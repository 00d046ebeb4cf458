"""Moved to ``tests.support.storage``; this alias keeps old imports working until the branches
open at the move have merged, then goes."""

from tests.support.storage import *  # noqa: F403
