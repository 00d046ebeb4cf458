"""The tests' one support layer.

Fixtures are pytest plugins, loaded for the whole suite by ``tests/conftest.py``
(``pytest_plugins``); everything else is imported by name, e.g.
``from tests.support.amqp import Client``.

* ``waiting``: ``wait_until`` (the one polling loop) and ``until`` (the same, not failing).
* ``metrics``: Prometheus samples read through the public registry API.
* ``tricks`` (plugin): the library tricks installed as the daemon installs them; the MySQL
  driver in the header (the C extension required in CI); ``tricks_off``.
* ``servers`` (plugin): the shared MySQL, Redis and RabbitMQ; skip without them, fail in CI.
* ``amqp`` (plugin): an RPC client, fake peer services, an event tap; ``client``, ``events``.
* ``proxy``: a TCP proxy that cuts, refuses or stalls connections to a server.
* ``service`` (plugin): the daemon in-process; ``service_settings``, ``daemons``.
* ``faults`` (plugin): daemon replicas as subprocesses, steady load; ``report``.
* ``storage`` (plugin): record builders; ``backend`` and ``storage`` on every backend.
* ``fakes``: a recording publisher and a failing storage for the unit harness.
* ``harness`` (plugin): the real actor system on fakes; ``build``, ``h``; no actor outlives
  a test.
* ``deploy``: k8s/ rendered as kustomize would; the monitoring generator.
* ``go_current`` (plugin): the newest upstream Go service and its peers for the ``current``
  wire profile (docs/profiles.md): its schema (``current_dsn``), writer, SQL reader, cache
  entries and replica (``go_current``), a strict Go reader of our bytes, the upstream golden
  literals (``data/current_golden.txt``).

The kit modules that lived next to the tests (``amqp_kit``, ``service_kit``, ``fault_kit``,
``storage_kit``, ``harness``, ``fakes``) remain as one-line aliases for branches that were
open at the move; delete them once those have merged.
"""

from __future__ import annotations

import os

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
"""CI must run every test: a missing server or entry point fails instead of skipping."""
