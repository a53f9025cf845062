# One application image for every Gridwork service; the command picks the service:
#   python -m services.population | services.events | services.media | services.assessment
#   gunicorn -c services/gateway/gunicorn_conf.py          (the HTTP gateway)

# The command centre's browser libraries (package-lock.json), installed with Debian's npm
# in a stage of their own: the runtime image gets their dist files and no Node.
FROM debian:bookworm-slim AS browser-libraries
RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs npm ca-certificates \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund

FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY requirements.lock ./
RUN pip install -r requirements.lock

COPY gridwork_common ./gridwork_common
COPY gridwork_backup ./gridwork_backup
COPY services ./services
COPY --from=browser-libraries /build/node_modules/leaflet/dist ./node_modules/leaflet/dist
COPY --from=browser-libraries /build/node_modules/htmx.org/dist ./node_modules/htmx.org/dist
# The message catalogues compiled now: the gateway cannot write them in a read-only image.
RUN python -c "from services.gateway.ui.i18n import compile_catalogues; compile_catalogues()"

RUN useradd --system --uid 10001 gridwork
USER gridwork

# Containers listen on all interfaces; METRICS_PORT serves /metrics of a nameko service.
ENV GATEWAY_HOST=0.0.0.0 \
    GATEWAY_PORT=8080 \
    METRICS_PORT=9100
EXPOSE 8080 9100

CMD ["gunicorn", "-c", "services/gateway/gunicorn_conf.py"]
