"""A Hugging Face Hub on 127.0.0.1 for download tests: no internet, bounded, stops itself.

``with FakeHub({"org/name": {"file": b"bytes"}}) as hub:`` serves the repository's info,
file tree and files as huggingface_hub asks for them; point a child process at it with
``HF_ENDPOINT=hub.endpoint``. ``chunk_delay_s`` streams files slowly (to cancel mid-file);
``hang`` accepts every request and never answers (to test timeouts).
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SHA = "0123456789abcdef0123456789abcdef01234567"
CHUNK = 1 << 14


class FakeHub:
    def __init__(self, repos: dict, chunk_delay_s: float = 0.0, hang: bool = False, lifetime_s: float = 60.0):
        self.repos, self.chunk_delay_s, self.hang = repos, chunk_delay_s, hang
        self.requests: list = []
        self.stopped = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._timer = threading.Timer(lifetime_s, self.stop)  # never outlives a stuck test

    def __enter__(self) -> "FakeHub":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        if not self.stopped.is_set():
            self.stopped.set()
            self._timer.cancel()
            self.server.shutdown()
            self.server.server_close()

    def _handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_HEAD(self) -> None:
                self._answer(send_body=False)

            def do_GET(self) -> None:
                self._answer(send_body=True)

            def _answer(self, send_body: bool) -> None:
                hub.requests.append(f"{self.command} {self.path}")
                if hub.hang:
                    hub.stopped.wait(30)
                    return
                path = self.path.split("?")[0]
                for repo, files in hub.repos.items():
                    if path.startswith(f"/api/models/{repo}/tree/"):
                        tree = [{"type": "file", "path": name, "size": len(data), "oid": _oid(data)} for name, data in files.items()]
                        return self._send(json.dumps(tree).encode(), send_body, "application/json")
                    if path in (f"/api/models/{repo}", f"/api/models/{repo}/revision/main"):
                        info = {"id": repo, "sha": SHA, "siblings": [{"rfilename": n, "size": len(d)} for n, d in files.items()]}
                        return self._send(json.dumps(info).encode(), send_body, "application/json")
                    prefix = f"/{repo}/resolve/"
                    if path.startswith(prefix):
                        name = path[len(prefix):].partition("/")[2]
                        if name in files:
                            return self._send(files[name], send_body, "application/octet-stream")
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _send(self, data: bytes, send_body: bool, content_type: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("X-Repo-Commit", SHA)
                self.send_header("ETag", f'"{_oid(data)}"')
                self.end_headers()
                if not send_body:
                    return
                for start in range(0, len(data), CHUNK):
                    if hub.stopped.wait(hub.chunk_delay_s):
                        return
                    try:
                        self.wfile.write(data[start : start + CHUNK])
                    except OSError:  # the client went away (cancelled)
                        return

        return Handler


def _oid(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()
