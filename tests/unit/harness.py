"""Moved to ``tests.support.harness``; this alias keeps old imports working until the branches
open at the move have merged, then goes."""

from tests.support.harness import *  # noqa: F403
