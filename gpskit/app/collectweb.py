"""The collect page's web layer (``gpskit app --collect``): the page, its live state,
server-sent events for the team, and the shot upload, over :class:`gpskit.collect.Collector`.

A shot is one POST of the picture's bytes, with what the page measured in the
``X-Gpskit-Shot`` header (JSON, URI-encoded); it needs the token header like every change.
The answer says whether the shot was kept and why not (200 when it had been received
before: the page retries after a dropped connection and the shot is never kept twice;
503 while the dataset is busy: the page keeps it and tries again). Every client of the
events stream hears of each new shot, so phones walking different streets see each
other's coverage grow.
"""

from __future__ import annotations

import asyncio
import html
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from gpskit.app.bodies import error_response, read_body
from gpskit.collect import Collector
from gpskit.errors import GpskitError

STATIC = Path(__file__).resolve().parent / "static"
SHOT_HEADER = "x-gpskit-shot"
#: Clients of the events stream at once (each holds a connection).
MAX_LISTENERS = 64
#: Seconds between keep-alive comments on the events stream (proxies close idle ones).
KEEP_ALIVE_S = 15.0


def _header_text(raw: str) -> str:
    """The header as the page sent it: URI-encoded UTF-8 (raw UTF-8 is taken too: HTTP
    hands header bytes over as Latin-1). Anything else is a ValueError."""
    text = raw.encode("latin-1").decode("utf-8")  # UnicodeError is a ValueError
    return unquote(text, errors="strict")


class Events:
    """Server-sent events to every open collect page."""

    def __init__(self) -> None:
        self.queues: set[asyncio.Queue[dict[str, Any]]] = set()

    def publish(self, event: dict[str, Any]) -> None:
        for queue in list(self.queues):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:  # a client that stopped reading: dropped
                self.queues.discard(queue)

    async def stream(self, request: Request) -> AsyncIterator[str]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=256)
        self.queues.add(queue)
        try:
            yield "retry: 3000\n\n"
            while queue in self.queues:
                try:
                    event = await asyncio.wait_for(queue.get(), timeout=KEEP_ALIVE_S)
                except TimeoutError:
                    if await request.is_disconnected():
                        return
                    yield ": keep-alive\n\n"
                    continue
                yield f"event: {event['type']}\ndata: {json.dumps(event)}\n\n"
        finally:
            self.queues.discard(queue)


class CollectHandlers:
    """The collect routes of one app."""

    def __init__(self, collector: Collector, token: str, max_body: int) -> None:
        self.collector, self.token, self.max_body = collector, token, max_body
        self.events = Events()

    def routes(self) -> list[Route]:
        return [
            Route("/collect", self.page),
            Route("/api/collect/state", self.state),
            Route("/api/collect/events", self.stream),
            Route("/api/collect/shots", self.shot, methods=["POST"]),
        ]

    async def page(self, request: Request) -> Response:
        page = (STATIC / "collect.html").read_text(encoding="utf-8")
        page = page.replace("{{TOKEN}}", html.escape(self.token, quote=True))
        page = page.replace("{{DATASET}}", html.escape(str(self.collector.dataset.root)))
        return Response(
            page, media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-store"}
        )

    async def state(self, request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(self.collector.state))

    async def stream(self, request: Request) -> Response:
        if len(self.events.queues) >= MAX_LISTENERS:
            return JSONResponse({"error": "too many open pages"}, status_code=503)
        return StreamingResponse(
            self.events.stream(request),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def shot(self, request: Request) -> Response:
        try:
            description = json.loads(_header_text(request.headers.get(SHOT_HEADER, "")))
        except (ValueError, RecursionError):
            return error_response(400, f"the {SHOT_HEADER} header is not JSON (UTF-8, URI-encoded)")
        data = await read_body(request, self.max_body)
        if isinstance(data, Response):
            return data
        try:
            outcome = await run_in_threadpool(self.collector.receive, description, data)
        except GpskitError as exc:
            status = {75: 503, 74: 507}.get(exc.exit_code, 400)
            return error_response(status, str(exc))
        answer = outcome.to_dict()
        if not outcome.repeated:
            self.events.publish({"type": "shot", "version": outcome.version, **answer})
        return JSONResponse(answer, status_code=200 if outcome.repeated else 201)
