"""The server's limits, and the request-size check that runs before a body is read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

GB = 1_000_000_000


@dataclass
class Limits:
    """What one server accepts; a request over a limit gets a 4xx (or 503 when only busy) naming it."""

    max_upload_bytes: int = 2 * GB         # one request body (an image upload)
    max_json_bytes: int = 1_000_000        # any other request body
    max_image_bytes: int = 4 * GB          # one decoded image, as float32
    max_images: int = 32
    max_total_image_bytes: int = 16 * GB
    max_prompts: int = 64                  # per job
    max_prompt_chars: int = 500
    max_queued_jobs: int = 64
    idle_seconds: float = 3600.0           # images and finished jobs untouched this long are forgotten
    feature_cache_bytes: Optional[int] = None  # per device; None: half the device's free memory
    retry_after_s: int = 10


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: 413 from the Content-Length header before any body byte is read, and
    while reading a body without one (chunked) as soon as it passes the limit."""

    def __init__(self, app: Any, limits: Limits, is_upload: Callable[[str, str], bool]) -> None:
        self.app, self.limits, self.is_upload = app, limits, is_upload

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = (self.limits.max_upload_bytes if self.is_upload(scope["method"], scope["path"])
                 else self.limits.max_json_bytes)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            return await _too_large(send, limit)
        received = 0
        started = False

        async def counted_receive() -> dict:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge
            return message

        async def tracked_send(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge:
            if not started:
                await _too_large(send, limit)


async def _too_large(send: Callable, limit: int) -> None:
    import json

    body = json.dumps({"detail": f"Request body over this server's limit of {limit / 1e6:.0f} MB "
                                 "(--max-upload-gb for images)."}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
