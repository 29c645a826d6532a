"""``voxtell-web --sessions N``: each browser user gets an app process of their own (their own
scene, volume, runs and undo), at most N at once; beyond that the page says the app is busy.

The launcher answers on the public port. A visit starts ``python -m VoxTellWeb`` on a free port
with an idle timeout and redirects the browser there; when its page is closed the process stops
after the timeout and frees the place. Several sessions in one process are not offered:
trame-slicer's app holds one scene per process.
"""

from __future__ import annotations

import asyncio
import html
import subprocess
import sys
from typing import List, Sequence

from aiohttp import web

from VoxTellCore.ports import free_port

BUSY_PAGE = """<!doctype html><html><head><meta charset="utf-8"><meta http-equiv="refresh" content="{retry}">
<title>VoxTell is busy</title></head><body style="font-family: sans-serif; margin: 3em">
<h1>VoxTell is busy</h1><p class="voxtell-busy">All {sessions} sessions of this VoxTell web app are in use.
This page tries again every {retry} seconds; a session frees up when its user closes the page.</p></body></html>"""
FAILED_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>VoxTell did not start</title></head>
<body style="font-family: sans-serif; margin: 3em"><h1>VoxTell did not start</h1><p>{reason}</p></body></html>"""
RETRY_S = 15
START_S = 180



class Launcher:
    """Starts one app process per visit (``app_args`` passed on), at most ``sessions`` alive."""

    def __init__(self, app_args: Sequence[str], sessions: int, host: str, idle_timeout_s: int) -> None:
        if sessions < 1:
            raise ValueError("--sessions must be at least 1")
        self.app_args, self.sessions, self.host, self.idle_timeout_s = list(app_args), sessions, host, idle_timeout_s
        self.children: List[subprocess.Popen] = []
        self._lock = asyncio.Lock()

    def alive(self) -> List[subprocess.Popen]:
        self.children = [child for child in self.children if child.poll() is None]
        return self.children

    async def visit(self, request: web.Request) -> web.StreamResponse:
        async with self._lock:  # two visits at once must not both take the last place
            if len(self.alive()) >= self.sessions:
                return web.Response(status=503, content_type="text/html", headers={"Retry-After": str(RETRY_S)},
                                    text=BUSY_PAGE.format(sessions=self.sessions, retry=RETRY_S))
            port = free_port()
            child = subprocess.Popen([sys.executable, "-m", "VoxTellWeb", "--host", self.host, "--port", str(port),
                                      "--idle-timeout", str(self.idle_timeout_s), *self.app_args])
            self.children.append(child)
        if not await self._listening(child, port):
            child.terminate()
            return web.Response(status=500, content_type="text/html", text=FAILED_PAGE.format(
                reason=html.escape(f"The session's process ended or did not answer within {START_S} s; "
                                   "the server's log says why.")))
        raise web.HTTPFound(f"{request.scheme}://{request.url.host}:{port}/")

    async def _listening(self, child: subprocess.Popen, port: int) -> bool:
        for _ in range(START_S * 2):
            if child.poll() is not None:
                return False
            try:
                _, writer = await asyncio.open_connection("127.0.0.1" if self.host in ("0.0.0.0", "") else self.host, port)
                writer.close()
                return True
            except OSError:
                await asyncio.sleep(0.5)
        return False

    def stop(self) -> None:
        for child in self.alive():
            child.terminate()
        for child in self.children:
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()


def serve(launcher: Launcher, port: int) -> None:
    app = web.Application()
    app.router.add_get("/", launcher.visit)
    print(f"VoxTell web app (up to {launcher.sessions} sessions): http://{launcher.host}:{port}/", flush=True)
    try:
        web.run_app(app, host=launcher.host, port=port, print=None)
    finally:
        launcher.stop()
