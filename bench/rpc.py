"""RPC baseline: raw kombu request/reply vs a nameko RPC to a no-op, in the same run.

    make bench, or: PYTHONPATH=. .venv/bin/python bench/rpc.py [--calls 2000]

Both sides run in this process on the same eventlet hub and broker, with a server on its
own connection and a client waiting for each reply before sending the next request.
The last line is `ratio = nameko RPC round trips/s / raw kombu round trips/s`; later
benchmarks compare against it.
"""

import gridwork_common.green  # noqa: F401  (first: patches eventlet before other imports)

# isort: split

import argparse
import os
import statistics
import time
import uuid

import eventlet
from kombu import Connection, Consumer, Exchange, Producer, Queue
from nameko.containers import ServiceContainer
from nameko.rpc import rpc
from nameko.standalone.rpc import ClusterRpcProxy

from bench.results import record
from gridwork_common.config import Settings

SERVICE_NAME = f"bench_noop_{uuid.uuid4().hex[:8]}"


class Noop:
    name = SERVICE_NAME

    @rpc
    def health(self):
        return {"status": "up"}


def summarize(label: str, latencies: list[float], elapsed: float) -> float:
    rate = len(latencies) / elapsed
    ordered = sorted(latencies)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[int(len(ordered) * 0.99) - 1] * 1000
    print(f"{label:<14} {rate:9.0f} round trips/s   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms")
    return rate


def timed_calls(call, calls: int, warmup: int) -> tuple[list[float], float]:
    for _ in range(warmup):
        call()
    latencies = []
    started = time.perf_counter()
    for _ in range(calls):
        t0 = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - t0)
    return latencies, time.perf_counter() - started


def raw_kombu(amqp_uri: str, calls: int, warmup: int) -> float:
    exchange = Exchange("", type="direct")  # the default exchange routes by queue name
    request_queue = Queue(f"bench-raw-{uuid.uuid4().hex[:8]}", auto_delete=True)

    server_connection = Connection(amqp_uri)
    server_channel = server_connection.channel()
    server_producer = Producer(server_channel, serializer="json")

    def serve(body, message):
        server_producer.publish(
            {"status": "up"},
            routing_key=message.properties["reply_to"],
            correlation_id=message.properties["correlation_id"],
            exchange=exchange,
        )
        message.ack()

    server = Consumer(server_channel, [request_queue], callbacks=[serve], accept=["json"])
    server.consume()
    serving = eventlet.spawn(lambda: [server_connection.drain_events() for _ in iter(int, 1)])

    client_connection = Connection(amqp_uri)
    client_channel = client_connection.channel()
    reply_queue = Queue(f"bench-reply-{uuid.uuid4().hex[:8]}", exclusive=True, auto_delete=True)
    replies = {}
    reply_consumer = Consumer(
        client_channel,
        [reply_queue],
        callbacks=[
            lambda body, msg: (
                replies.__setitem__(msg.properties["correlation_id"], body),
                msg.ack(),
            )
        ],
        accept=["json"],
    )
    reply_consumer.consume()
    client_producer = Producer(client_channel, serializer="json")

    def call():
        correlation_id = uuid.uuid4().hex
        client_producer.publish(
            {"args": [], "kwargs": {}},
            routing_key=request_queue.name,
            exchange=exchange,
            reply_to=reply_queue.name,
            correlation_id=correlation_id,
        )
        while correlation_id not in replies:
            client_connection.drain_events(timeout=10)
        return replies.pop(correlation_id)

    try:
        latencies, elapsed = timed_calls(call, calls, warmup)
    finally:
        serving.kill()
        client_connection.release()
        server_connection.release()
    return summarize("raw kombu", latencies, elapsed)


def nameko_rpc(amqp_uri: str, calls: int, warmup: int) -> float:
    config = Settings.from_env(
        {"AMQP_URI": amqp_uri, "METRICS_PORT": "0", "GRIDWORK_DEV_MODE": "true"}
    ).nameko_config()
    container = ServiceContainer(Noop, config)
    container.start()
    try:
        with ClusterRpcProxy(config, timeout=10) as proxy:
            service = proxy[SERVICE_NAME]
            latencies, elapsed = timed_calls(service.health, calls, warmup)
    finally:
        container.stop()
    return summarize("nameko rpc", latencies, elapsed)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument(
        "--amqp-uri",
        default=Settings.from_env({**os.environ, "GRIDWORK_DEV_MODE": "true"}).amqp_uri,
    )
    args = parser.parse_args()
    print(f"{args.calls} sequential round trips each, after {args.warmup} warm-up calls")
    raw = raw_kombu(args.amqp_uri, args.calls, args.warmup)
    nameko = nameko_rpc(args.amqp_uri, args.calls, args.warmup)
    record("rpc", "nameko RPC round trips", nameko, "raw kombu round trips", raw, "/s")
    print(f"ratio {nameko / raw:.3f}")


if __name__ == "__main__":
    main()
