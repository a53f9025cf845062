# One application image for every Gridwork service; the command picks the service:
#   python -m services.population | services.events | services.media | services.assessment
#   gunicorn -c services/gateway/gunicorn_conf.py          (the HTTP gateway)
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY requirements.lock ./
RUN pip install -r requirements.lock

COPY gridwork_common ./gridwork_common
COPY services ./services

RUN useradd --system --uid 10001 gridwork
USER gridwork

# Containers listen on all interfaces; METRICS_PORT serves /metrics of a nameko service.
ENV GATEWAY_HOST=0.0.0.0 \
    GATEWAY_PORT=8080 \
    METRICS_PORT=9100
EXPOSE 8080 9100

CMD ["gunicorn", "-c", "services/gateway/gunicorn_conf.py"]
