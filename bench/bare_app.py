"""The floor under the gateway for bench/gateway.py: one Flask route answering a small
JSON document, with no authentication, RPC or database, served by gunicorn with the
gateway's worker settings (gthread, the same workers and threads)."""

from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/bare")
def bare():
    return jsonify(status="up")
