"""Load mysql-connector's C extension before anything loads the system's OpenSSL.

The extension (``_mysql_connector``, shipped in the mysql-connector-python wheel) links the
OpenSSL 3.5 it vendors. Once ``ssl`` or ``hashlib`` has loaded the system's OpenSSL 3.0 under
the same sonames, the extension cannot load and the driver silently falls back to its
pure-Python protocol, which costs a create about 40 % more CPU (bench/RESULTS.md). Loaded
first, both share the vendored OpenSSL (3.x keeps its ABI). That library looks for CA
certificates under its own build prefix, so the system's bundle is named through
``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` unless they are set already: TLS verification (amqps,
rediss) keeps using the system's CAs.
"""

from __future__ import annotations

import os
import sys

CA_FILES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Alpine
    "/etc/pki/tls/certs/ca-bundle.crt",  # RHEL, Fedora
    "/etc/ssl/cert.pem",
)
CA_DIRS = ("/etc/ssl/certs", "/etc/pki/tls/certs")


def load_mysql_extension() -> bool:
    """Import ``_mysql_connector`` if it can still load; True if it is loaded."""
    if "_mysql_connector" in sys.modules:
        return True
    if "_ssl" in sys.modules or "_hashlib" in sys.modules:
        return False  # the system's libssl/libcrypto is loaded already
    try:
        import _mysql_connector  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        return False
    # read by OpenSSL whenever a context loads its default CAs, so setting them now is in time
    for variable, candidates in (("SSL_CERT_FILE", CA_FILES), ("SSL_CERT_DIR", CA_DIRS)):
        found = next((path for path in candidates if os.path.exists(path)), None)
        if found and variable not in os.environ:
            os.environ[variable] = found
    return True
