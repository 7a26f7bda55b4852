# poam-sync: the daemon in a container. No secrets are baked in: pass them as environment
# variables (JIRA_TOKEN, SERVICENOW_PASSWORD, ...) or mount files for ${file:PATH} references.
#
#   docker build -t poam-sync .
#   docker run --env-file sync.env -v poam-sync-data:/data \
#     -v "$PWD/config:/app/config:ro" -v "$PWD/mappings:/app/mappings:ro" poam-sync
#
# /data keeps the SQLite store across new containers (without it every new container starts
# empty; `poam-sync repair` then links what exists, but keep the volume). The config and the
# mappings are mounted read-only; the image's own mappings are the defaults.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY poam_sync ./poam_sync
COPY mappings ./mappings
COPY config/poam-sync.example.yaml ./config/poam-sync.example.yaml
RUN pip install . \
    && useradd --create-home --uid 10001 poamsync \
    && mkdir -p /data && chown poamsync /data && chmod 0700 /data

# numeric, so that a runtime refusing root (runAsNonRoot) can tell without reading /etc/passwd
USER 10001
# The canonical store: mount a volume here, or set POAM_SYNC_DATABASE_URL to PostgreSQL.
ENV POAM_SYNC_DATABASE_URL=sqlite:////data/poam-sync.db \
    POAM_SYNC_CONFIG=/app/config/poam-sync.yaml
VOLUME ["/data"]

# /healthz, /readyz and /metrics (docs/operations.md). Inside the container only; to let
# Prometheus scrape from outside, run with: run --http 0.0.0.0:8080 and publish the port.
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]

ENTRYPOINT ["poam-sync"]
CMD ["run", "--http", "127.0.0.1:8080"]
