# Guardrail's production image. Not built on the development machines (no Docker engine there):
# review it, build it in CI that has one:  docker build -t guardrail:0.1.0 .
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
RUN pip install --no-cache-dir --upgrade pip build
COPY pyproject.toml README.md ./
COPY webhook ./webhook
RUN python -m build --wheel --outdir /dist && \
    pip install --no-cache-dir --prefix=/install /dist/*.whl

FROM python:3.11-slim-bookworm
LABEL org.opencontainers.image.title="guardrail" \
      org.opencontainers.image.description="Kubernetes admission webhook enforcing network-security guardrails" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /install /usr/local
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin guardrail
USER 10001:10001
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
EXPOSE 8443
# exec form: gunicorn's master is PID 1's child-free process and gets SIGTERM directly, so it
# drains in-flight reviews before exiting. No HEALTHCHECK: Kubernetes probes /healthz, /readyz.
ENTRYPOINT ["guardrail"]
CMD ["serve", "--config", "/etc/guardrail/config.yaml", "--cert-dir", "/etc/guardrail/tls"]
