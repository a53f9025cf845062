"""The gateway's RPC needs no search of sys.path per request."""

import importlib.machinery

import kombu.transport
from kombu import Connection

import services.gateway.rpc  # noqa: F401  (settles kombu's librabbitmq question)


def test_building_a_kombu_connection_searches_no_path_for_librabbitmq(monkeypatch):
    searched = []
    find_spec = importlib.machinery.PathFinder.find_spec

    def counting(name, *args, **kwargs):
        searched.append(name)
        return find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.machinery.PathFinder, "find_spec", counting)
    # gunicorn's threads, not eventlet's (where kombu does not ask)
    monkeypatch.setattr(kombu.transport, "_detect_environment", lambda: "default")
    for _ in range(3):  # as nameko builds one for each RPC
        Connection("amqp://guest:guest@127.0.0.1:5672/")
    assert "librabbitmq" not in searched
