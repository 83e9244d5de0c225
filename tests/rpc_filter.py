"""A JSON-RPC filter in front of a real node: it passes on only the methods it allows and
answers every other one as a node that has expired its history does (EIP-4444's error
4444), and it counts what it was asked. It answers CORS as public nodes do (any origin may
POST JSON), so that a page's verifier can ask it too."""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

from tests.conftest import free_port

#: What a verifier with evidence may ask: the chain id, the head, a block's header.
HEADER_ONLY = frozenset({"eth_chainId", "eth_blockNumber", "eth_getBlockByNumber"})
PRUNED = {"code": 4444, "message": "pruned history unavailable"}
NO_BATCHES = {"code": -32600, "message": "batch requests are not supported"}
CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "POST, OPTIONS",
        "Access-Control-Allow-Headers": "Content-Type"}


class RpcFilter:
    """``url`` serves ``upstream`` through the filter, which passes on the methods in
    ``allowed`` (every one for ``None``) less those in ``refuse``; ``asked`` counts the
    methods asked (refused ones too); ``refused`` lists the refused ones."""

    def __init__(self, upstream: str, allowed: frozenset[str] | None = HEADER_ONLY,
                 refuse: frozenset[str] = frozenset(), batches: bool = True):
        self.upstream, self.allowed, self.refuse = upstream, allowed, refuse
        self.batches = batches  # False: a batch of requests is answered with one error
        self.asked: Counter = Counter()
        self.refused: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, call: dict) -> dict:
        method = call.get("method")
        self.asked[method] += 1
        full_block = method == "eth_getBlockByNumber" and call["params"][1:] != [False]
        passes = (self.allowed is None or method in self.allowed) and method not in self.refuse
        if not passes or full_block and self.allowed is not None:
            self.refused.append(method)
            return {"jsonrpc": "2.0", "id": call.get("id"), "error": PRUNED}
        return requests.post(self.upstream, json=call, timeout=10).json()

    def _handler(self):
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if isinstance(body, list) and not owner.batches:
                    reply = {"jsonrpc": "2.0", "id": None, "error": NO_BATCHES}
                elif isinstance(body, list):
                    reply = [owner.answer(call) for call in body]
                else:
                    reply = owner.answer(body)
                data = json.dumps(reply).encode()
                self.send_response(200)
                self._cors()
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_OPTIONS(self):  # noqa: N802 (a browser's preflight before its POST)
                self.send_response(204)
                self._cors()
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _cors(self):
                for name, value in CORS.items():
                    self.send_header(name, value)

            def log_message(self, *args):
                pass

        return Handler

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
