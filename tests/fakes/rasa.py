"""What a Rasa server's /model/parse answers, for the fake Rasa servers of the tests."""
from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler


def answer_parse(handler: BaseHTTPRequestHandler, intent: str, confidence: float) -> None:
    body = json.dumps({"intent": {"name": intent, "confidence": confidence}}).encode()
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)
