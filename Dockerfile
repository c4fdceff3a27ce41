# syntax=docker/dockerfile:1
# Guardrail's production image. Not built on the development machines (no container engine
# there): review it, and build it where there is one:
#   docker build -t ghcr.io/guardrail-dev/guardrail:0.1.0 .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# -- build: a wheel of this checkout, installed with its dependencies into a virtualenv --------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY webhook ./webhook
RUN python -m venv /opt/guardrail \
    && /opt/guardrail/bin/pip install --no-compile . \
    && /opt/guardrail/bin/pip uninstall --yes pip setuptools \
    && /opt/guardrail/bin/python -m compileall -q /opt/guardrail

# -- runtime: the virtualenv only; no compiler, no pip, no sources, no tests -----------------
FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="guardrail" \
      org.opencontainers.image.description="Kubernetes admission webhook enforcing network-security guardrails" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/guardrail-dev/guardrail" \
      org.opencontainers.image.licenses="Apache-2.0"
# A fixed numeric UID/GID (10001, as in deploy/base/deployment.yaml): runAsNonRoot can check
# it without resolving names, and it owns nothing in the image.
RUN groupadd --system --gid 10001 guardrail \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin guardrail
COPY --from=build /opt/guardrail /opt/guardrail
ENV PATH=/opt/guardrail/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
EXPOSE 8443
# Exec form: gunicorn's master is PID 1 and receives SIGTERM itself (no shell in between). It
# installs handlers for TERM/INT/QUIT and CHLD, so it drains in-flight reviews within its
# graceful timeout and reaps its workers: no init process is needed.
# No HEALTHCHECK: Kubernetes probes /healthz and /readyz (deploy/base/deployment.yaml).
STOPSIGNAL SIGTERM
ENTRYPOINT ["guardrail"]
CMD ["serve", "--config=/etc/guardrail/config/config.yaml", "--cert-dir=/etc/guardrail/tls"]
