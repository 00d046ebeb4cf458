"""Moved to ``tests.support.amqp`` and ``tests.support.proxy``; this alias keeps old imports
working until the branches open at the move have merged, then goes."""

from tests.support.amqp import *  # noqa: F403
from tests.support.proxy import *  # noqa: F403
