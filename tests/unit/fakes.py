"""Moved to ``tests.support.fakes``; this alias keeps old imports working until the branches
open at the move have merged, then goes."""

from tests.support.fakes import *  # noqa: F403
