#!/usr/bin/env bash
# Make sure a RabbitMQ with the management plugin runs on this machine.
# Installs it with apt if missing (Debian 12, as root) and starts it if stopped.
# Prints "started" when this script started it, so `make down` can stop only that.
set -euo pipefail

if ! command -v rabbitmq-server >/dev/null 2>&1; then
  echo "installing rabbitmq-server with apt" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq rabbitmq-server >&2
fi

reachable() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }

if ! rabbitmq-plugins is_enabled rabbitmq_management >/dev/null 2>&1; then
  # --offline works whether or not the node is running; a running node picks it up below.
  rabbitmq-plugins enable --offline rabbitmq_management >&2
fi

started=no
if ! reachable; then
  rabbitmq-server -detached >&2
  started=yes
fi
for _ in $(seq 1 120); do reachable && break; sleep 0.5; done
reachable || { echo "RabbitMQ did not come up on 127.0.0.1:5672" >&2; exit 1; }

# A node that was already running before the plugin was enabled needs it enabled online.
rabbitmq-plugins enable rabbitmq_management >/dev/null 2>&1 || true
for _ in $(seq 1 60); do (exec 3<>/dev/tcp/127.0.0.1/15672) 2>/dev/null && break; sleep 0.5; done
echo "$started"
