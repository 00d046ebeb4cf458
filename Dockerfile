# customer-manager: Python drop-in for VoIPbin's bin-customer-manager.
#
# Build:  docker build -t customer-manager:local .
# Run:    docker run --rm -p 2112:2112 -e RABBITMQ_ADDRESS=... -e DATABASE_DSN=... customer-manager:local
# CLI:    docker run --rm --entrypoint customer-control customer-manager:local db migrate
#
# Both stages use the same pinned base, so the venv built in the first one runs in the second.

############################ builder: wheel + virtualenv ############################
FROM python:3.11.13-slim-bookworm AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src

# Only the files the package is built from (.dockerignore keeps the rest out).
# README.m[d]: setup.cfg's long_description reads README.md when it exists; the glob keeps the
# build working before it does.
COPY pyproject.toml setup.cfg README.m[d] ./
COPY customer_manager ./customer_manager

# Build the project's wheel, then install it (and its install_requires from setup.cfg) into a
# self-contained venv that the runtime stage copies as a whole; pip and setuptools are
# removed from it (nothing installs packages at run time).
RUN python -m venv /opt/venv \
    && python -m pip wheel --no-deps --wheel-dir /wheels . \
    && /opt/venv/bin/pip install /wheels/*.whl \
    && /opt/venv/bin/pip uninstall --yes pip setuptools \
    && /opt/venv/bin/customer-manager --help >/dev/null \
    && /opt/venv/bin/customer-control --help >/dev/null

############################ runtime ############################
FROM python:3.11.13-slim-bookworm AS runtime

LABEL org.opencontainers.image.title="customer-manager" \
      org.opencontainers.image.description="VoIPbin customer-manager (pykka actor system on RabbitMQ/MySQL/Redis)" \
      org.opencontainers.image.licenses="MIT"

# customer-manager and customer-control are console scripts of the venv: on PATH.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PROMETHEUS_ENDPOINT=/metrics \
    PROMETHEUS_LISTEN_ADDRESS=:2112

# Fixed numeric UID/GID so Kubernetes' runAsNonRoot can verify it (k8s/deployment.yml uses 10001).
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin app \
    && mkdir -p /app \
    && chown app:app /app

COPY --from=builder /opt/venv /opt/venv

# Working directory of the embedded SQLite default (no DATABASE_DSN); writable by the app user.
WORKDIR /app
USER 10001:10001

# Prometheus metrics (/metrics), liveness (/healthz) and readiness (/readyz).
EXPOSE 2112

# slim has no curl: the probe is the package's own (standard library HTTP); it reads
# PROMETHEUS_LISTEN_ADDRESS, so it follows the port the daemon really listens on.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-m", "customer_manager.health"]

# SIGTERM (the default stop signal) drains in-flight requests (~30 s): give `docker stop` -t 45.
ENTRYPOINT ["customer-manager"]
