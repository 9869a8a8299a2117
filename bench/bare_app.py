"""The framework's ceiling for bench/status_bench.py: Flask answering a small JSON, nothing else
(no database, no Redis, no authentication), served with the project's gunicorn settings."""

from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/health")
def health():
    return jsonify(status="ok")


@app.get("/bare")
def bare():
    return jsonify(videoJobId="00000000-0000-0000-0000-000000000000", videoGenerationStatus="generating")
