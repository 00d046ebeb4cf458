"""mysql-connector's C extension, loaded before anything loads the system's OpenSSL.

Measured (bench/RESULTS.md item 11, mysql-connector-python 26.10.0): a create costs
1.74 → 1.0 ms of daemon CPU on the C extension (0.20 → 0.32 × echo in back-to-back runs); the
driver runs a statement with one GIL release instead of many small socket reads.

The extension (``_mysql_connector``, shipped in the mysql-connector-python wheel) links the
OpenSSL 3.5 it vendors. Once ``ssl`` or ``hashlib`` has loaded the system's OpenSSL 3.0 under
the same sonames, the extension cannot load and the driver silently falls back to its
pure-Python protocol. Loaded first, both share the vendored OpenSSL (3.x keeps its ABI).

Nothing happens at import. ``preload()`` is the first thing the entry points in
``customer_manager.launch`` call, before they import the program (which imports pika, hence
``ssl``); it imports only the standard library. The vendored OpenSSL looks for CA certificates
under its own build prefix, so ``use_system_cas()`` names the system's bundle through
``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` (unless they are set): ``tricks.install()`` calls it, in
the daemon's and the CLI's main, before anything connects, only when the extension is loaded.
Before loading, ``preload()`` drops the page cache of the extension's files
(``_drop_cached_pages``: 3.3 MiB of RSS after a fresh install, bench/RESULTS.md, seventh session).
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys

DISTRIBUTION = "mysql-connector-python"
MEASURED = ("26.10", "26.11")  # [from, below): the versions pinned in setup.cfg
CA_FILES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Alpine
    "/etc/pki/tls/certs/ca-bundle.crt",  # RHEL, Fedora
    "/etc/ssl/cert.pem",
)
CA_DIRS = ("/etc/ssl/certs", "/etc/pki/tls/certs")

_why_not = "not preloaded: the process did not start through customer_manager.launch"


def version_tuple(text: str) -> tuple[int, ...]:
    """``"26.10.0"`` → ``(26, 10, 0)``; a non-numeric part ends it (``"1.5.0rc1"`` → (1, 5))."""
    parts: list[int] = []
    for part in text.split("."):
        if not part.isdigit():
            break
        parts.append(int(part))
    return tuple(parts)


def in_range(version: str, measured: tuple[str, str]) -> bool:
    """True if ``measured[0] <= version < measured[1]``."""
    low, high = measured
    return version_tuple(low) <= version_tuple(version) < version_tuple(high)


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _version_header(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as meta:
            for line in meta:
                if line.startswith("Version:"):
                    return line.split(":", 1)[1].strip()
                if not line.strip():  # the headers end at the first blank line
                    break
    except OSError:
        pass
    return ""


def installed_version(distribution: str) -> str:
    """The version importlib.metadata would give, read from the first
    ``<name>-<version>.dist-info/METADATA`` on ``sys.path`` (the layout installers write).
    Not importlib.metadata itself: the daemon would keep it and what it imports (email,
    zipfile, csv, ...) for its whole life, 0.9 MiB of RSS (bench/RESULTS.md, seventh session).
    Anything else (an egg, a zip) is left to importlib.metadata."""
    wanted = _normalized(distribution)
    for folder in sys.path:
        try:
            names = os.listdir(folder or ".")
        except OSError:
            continue
        for name in names:
            if name.endswith(".dist-info") and _normalized(name.partition("-")[0]) == wanted:
                version = _version_header(os.path.join(folder, name, "METADATA"))
                if version:
                    return version
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def preload() -> bool:
    """Import ``_mysql_connector`` if the installed driver is the measured one and the
    extension can still load; True if it is loaded. Must run before ``ssl``/``hashlib``."""
    global _why_not
    if "_mysql_connector" in sys.modules:
        return True
    version = installed_version(DISTRIBUTION)
    if not in_range(version, MEASURED):
        _why_not = f"{DISTRIBUTION} {version} is not the measured >={MEASURED[0]},<{MEASURED[1]}"
        return False
    if "_ssl" in sys.modules or "_hashlib" in sys.modules:
        _why_not = "ssl or hashlib was loaded first (the system's OpenSSL blocks the extension)"
        return False
    _drop_cached_pages()
    try:
        import _mysql_connector  # type: ignore[import-not-found]  # noqa: F401
    except ImportError as exc:
        _why_not = f"the extension does not load: {exc}"
        return False
    return True


def _drop_cached_pages() -> None:
    """Ask the kernel to drop the page cache of the extension and its vendored OpenSSL
    (``POSIX_FADV_DONTNEED``; pages another process maps stay) before loading them. Right
    after pip installed them (or an image layer was unpacked), their cached pages come in
    large blocks that a page fault maps whole: the same daemon then had 3.3 MiB more RSS in
    these two files than once they were read back by its own faults (bench/RESULTS.md,
    seventh session). Costs one read of ~9 MB at start when they were cached."""
    spec = importlib.util.find_spec("_mysql_connector")
    if spec is None or not spec.origin or not hasattr(os, "posix_fadvise"):
        return
    vendor = os.path.join(os.path.dirname(spec.origin), "mysql", "vendor")
    try:
        names = [os.path.join(vendor, n) for n in os.listdir(vendor) if ".so" in n]
    except OSError:
        names = []
    for path in [spec.origin, *names]:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        except OSError:
            pass
        finally:
            os.close(fd)


def loaded() -> bool:
    return "_mysql_connector" in sys.modules


def driver() -> str:
    """Which MySQL protocol implementation ``MySQLStorage`` uses in this process, and why."""
    version = installed_version(DISTRIBUTION)
    if loaded():
        return f"C extension ({DISTRIBUTION} {version})"
    return f"pure Python ({DISTRIBUTION} {version}; {_why_not})"


def use_system_cas() -> dict[str, str]:
    """Point OpenSSL at the system's CA bundle (for amqps, rediss, MySQL TLS), unless the
    environment names one already; return what was set. OpenSSL reads these whenever a context
    loads its default CAs, so this must run before the first TLS connection."""
    chosen: dict[str, str] = {}
    for variable, candidates in (("SSL_CERT_FILE", CA_FILES), ("SSL_CERT_DIR", CA_DIRS)):
        found = next((path for path in candidates if os.path.exists(path)), None)
        if found and variable not in os.environ:
            os.environ[variable] = chosen[variable] = found
    return chosen
