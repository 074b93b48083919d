"""Fixtures for the deployment tests: a fake Qdrant server (the one external service faked, for
what qdrant-client's local mode cannot show: the collection config and payload indexes sent
to a server, and snapshots), and both storage backends on a temporary folder."""

from __future__ import annotations

import json
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

QDRANT_VERSION = "1.19.1"  # the server docker-compose.yml pins


class FakeQdrant:
    """A local HTTP server answering the few Qdrant REST calls Cairn's admin paths make, like
    Qdrant does; it records every request (method, path, body, headers) and keeps collections,
    aliases and snapshots in memory."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.collections: dict[str, dict] = {}
        self.indexes: dict[str, dict[str, object]] = {}
        self.aliases: dict[str, str] = {}
        self.snapshots: dict[str, list[dict]] = {}
        self.dropping: set[str] = set()  # path endings whose connections are cut without a reply (a lost server)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                path = self.path.split("?")[0]
                fake.requests.append({"method": self.command, "path": path, "body": body, "headers": dict(self.headers)})
                if any(path.endswith(ending) for ending in fake.dropping):
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)  # the server went away mid-request
                    return
                status, payload = fake.route(self.command, path, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- routes ----------------------------------------------------------------------
    @staticmethod
    def _ok(result) -> tuple[int, dict]:
        return 200, {"result": result, "status": "ok", "time": 0.0}

    def route(self, method: str, path: str, body) -> tuple[int, dict]:
        if path == "/":
            return 200, {"title": "qdrant - vector search engine", "version": QDRANT_VERSION}
        if path == "/collections" and method == "GET":
            return self._ok({"collections": [{"name": n} for n in sorted(self.collections)]})
        if path == "/aliases" and method == "GET":
            return self._ok({"aliases": [{"alias_name": a, "collection_name": c} for a, c in self.aliases.items()]})
        if path == "/collections/aliases" and method == "POST":
            for action in body["actions"]:
                if "delete_alias" in action:
                    self.aliases.pop(action["delete_alias"]["alias_name"], None)
                if "create_alias" in action:
                    self.aliases[action["create_alias"]["alias_name"]] = action["create_alias"]["collection_name"]
            return self._ok(True)
        match = re.fullmatch(r"/collections/([^/]+)(/.*)?", path)
        if not match:
            return 404, {"status": {"error": f"no route {method} {path}"}}
        name, rest = match.group(1), match.group(2) or ""
        if rest == "/exists":
            return self._ok({"exists": name in self.collections})
        if rest == "" and method == "PUT":
            self.collections[name] = body
            self.indexes[name] = {}
            return self._ok(True)
        if rest == "" and method == "DELETE":
            self.collections.pop(name, None)
            return self._ok(True)
        if name not in self.collections:
            return 404, {"status": {"error": f"Not found: Collection `{name}` doesn't exist!"}}
        if rest == "/index" and method == "PUT":
            self.indexes[name][body["field_name"]] = body["field_schema"]
            return self._ok({"operation_id": len(self.requests), "status": "completed"})
        if rest == "/snapshots" and method == "POST":
            n = len(self.snapshots.setdefault(name, [])) + 1
            snapshot = {
                "name": f"{name}-{n}-2026-11-21-10-00-0{n}.snapshot",
                "creation_time": f"2026-11-21T10:00:0{n}",
                "size": 1000 * n,
                "checksum": "0" * 64,
            }
            self.snapshots[name].append(snapshot)
            return self._ok(snapshot)
        if rest == "/snapshots" and method == "GET":
            return self._ok(self.snapshots.get(name, []))
        if rest == "/points/query/batch" and method == "POST":  # an empty collection's answer
            return self._ok([{"points": []} for _ in body["searches"]])
        if rest == "/points/count" and method == "POST":
            return self._ok({"count": 0})
        return 404, {"status": {"error": f"no route {method} {path}"}}


@pytest.fixture
def fake_qdrant():
    server = FakeQdrant()
    yield server
    server.close()


def open_backend(kind: str, data_dir: Path):
    """The embedded engine on data_dir, or the server client in local mode (in memory)."""
    if kind == "edge":
        from retrieval.store.edge import EdgeStore

        return EdgeStore(data_dir)
    from qdrant_client import QdrantClient

    from retrieval.store.server import ServerStore

    return ServerStore(QdrantClient(":memory:"))
