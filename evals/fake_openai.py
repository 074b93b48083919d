"""A fast fake OpenAI-compatible chat endpoint on loopback, for load runs: it answers at once, so
what a load run measures on ``/answer`` is the service's own overhead apart from a model's.

``POST /v1/chat/completions`` streams (or returns) one sentence copied from the prompt's first
document block with a ``[1]`` citation, so the answer passes the service's citation checks the
way a good model's would; with no document in the prompt it says the documents do not answer.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_FIRST_BLOCK = re.compile(r'<document n="1"[^>]*>\n(.*?)\n</document', re.DOTALL)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_MAX_WORDS = 40
NO_ANSWER = "The documents do not answer this question."


def reply_for(messages: list[dict]) -> str:
    """The answer to a chat request: the first sentence (of 4+ words) of document 1, cited."""
    user = next((m.get("content") for m in reversed(messages) if m.get("role") == "user"), "")
    if isinstance(user, list):  # content parts
        user = " ".join(part.get("text", "") for part in user if isinstance(part, dict))
    found = _FIRST_BLOCK.search(user or "")
    if not found:
        return NO_ANSWER
    lines = [line for line in found.group(1).splitlines() if not line.lstrip().startswith("#")]  # headings
    text = " ".join(" ".join(lines).split()) or " ".join(found.group(1).split())
    sentence = next((s for s in _SENTENCE_END.split(text) if len(s.split()) >= 4), text)
    words = sentence.split()[:_MAX_WORDS]
    return " ".join(words).rstrip(".!?") + " [1]."


def _chunk(delta: dict, finish: str | None = None) -> bytes:
    body = {
        "id": "chatcmpl-load",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "fake-fast",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(body)}\n\n".encode()


class FakeOpenAIServer:
    """Serves on 127.0.0.1 (a free port) from a daemon thread until ``close()``."""

    def __init__(self) -> None:
        self.requests = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # a load run makes thousands
                pass

            def do_POST(self) -> None:
                try:
                    body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
                except ValueError:
                    self._json(400, {"error": {"message": "the body is not JSON", "type": "invalid_request_error"}})
                    return
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._json(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})
                    return
                with server._lock:
                    server.requests += 1
                try:
                    server._answer(self, body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the service gave up on this answer

            def _json(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="fake-openai", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """The base URL to give as CAIRN_OPENAI_BASE_URL."""
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def _answer(self, handler: BaseHTTPRequestHandler, body: dict) -> None:
        text = reply_for(body.get("messages") or [])
        if not body.get("stream"):
            message = {"role": "assistant", "content": text}
            handler._json(  # type: ignore[attr-defined]
                200,
                {
                    "id": "chatcmpl-load",
                    "object": "chat.completion",
                    "created": 0,
                    "model": "fake-fast",
                    "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 0, "completion_tokens": len(text.split()), "total_tokens": 0},
                },
            )
            return
        handler.send_response(200)
        handler.send_header("content-type", "text/event-stream")
        handler.send_header("connection", "close")  # the stream ends when the connection does
        handler.end_headers()
        words = text.split(" ")
        pieces = [_chunk({"role": "assistant", "content": ""})]
        pieces += [_chunk({"content": word if i == 0 else " " + word}) for i, word in enumerate(words)]
        pieces += [_chunk({}, finish="stop"), b"data: [DONE]\n\n"]
        handler.wfile.write(b"".join(pieces))
        handler.wfile.flush()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> "FakeOpenAIServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
