"""Moved to ``tests.support.service``; this alias keeps old imports working until the branches
open at the move have merged, then goes."""

from tests.support.servers import REDIS_DB  # noqa: F401
from tests.support.service import *  # noqa: F403
