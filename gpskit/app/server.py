"""The review app's web layer (Starlette): pages, JSON, pictures and decisions over the
library (the catalog, the decision store, the predictor). It knows no rule of its own.

Safe by default: every request's ``Host`` must be one the server answers to (no DNS
rebinding); off loopback every request needs the token (``?token=`` once, then a
same-site cookie); every request that changes something needs it in the
``X-Gpskit-Token`` header, whatever the host (another page cannot read it, so it cannot
forge one). Files are served by manifest row id only. The page builds its DOM from text,
never from HTML, and the Content-Security-Policy allows only gpskit's own scripts.
"""

from __future__ import annotations

import hmac
import html
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from gpskit.app.bodies import error_response as _error
from gpskit.app.bodies import read_body as _body
from gpskit.app.catalog import FILTERS, Catalog
from gpskit.app.images import THUMB_SIDE, VIEW_SIDE, decode_upload, picture, placeholder
from gpskit.app.options import AppOptions
from gpskit.dataset import Dataset
from gpskit.decisions.kinds import MAX_PHOTOS
from gpskit.decisions.store import DecisionStore
from gpskit.errors import GpskitError, environment_problem

STATIC = Path(__file__).resolve().parent / "static"
LEAFLET = Path(__file__).resolve().parents[1] / "_vendor" / "leaflet"
TOKEN_HEADER = "x-gpskit-token"
TOKEN_COOKIE = "gpskit_token"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob: https://tile.openstreetmap.org; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
#: Bytes a JSON request body may hold (a decision is a few hundred).
MAX_JSON = 1 << 20
#: Decisions the decisions page lists (the newest).
SHOWN_DECISIONS = 500


async def _gpskit_error(request: Request, exc: Exception) -> Response:
    """gpskit's errors as one JSON line: the store busy (503), the disk (507), the rest
    the request's (400)."""
    status = {75: 503, 74: 507}.get(getattr(exc, "exit_code", 2), 400)
    return _error(status, str(exc))


async def _environment_error(request: Request, exc: Exception) -> Response:
    """An OSError the machine caused (permissions, a full or read-only disk) as gpskit's
    one line (507); any other is a gpskit bug, left to the server's 500."""
    named = environment_problem(exc)
    if named is None:
        raise exc
    return await _gpskit_error(request, named)


class Guard(BaseHTTPMiddleware):
    """Host, token and header checks before any route runs (see the module docstring)."""

    def __init__(self, app: Any, options: AppOptions) -> None:
        super().__init__(app)
        self.options = options

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        options = self.options
        host = request.headers.get("host", "")
        if not options.host_allowed(host):
            return PlainTextResponse("unknown host", status_code=421)
        token = options.token
        given = request.query_params.get("token") or request.cookies.get(TOKEN_COOKIE) or ""
        header = request.headers.get(TOKEN_HEADER, "")
        if not options.loopback and not (_same(given, token) or _same(header, token)):
            return PlainTextResponse(
                "this gpskit app needs its token: open the URL it printed", status_code=401
            )
        if request.method not in ("GET", "HEAD") and not _same(header, token):
            return _error(403, "a change needs the page's token (reload the page)")
        site = request.headers.get("sec-fetch-site", "same-origin")
        navigation = request.url.path == "/" and request.headers.get("sec-fetch-mode") == "navigate"
        if site not in ("same-origin", "none") and not navigation:
            return PlainTextResponse("not from another site", status_code=403)  # probes, hotlinks
        origin = request.headers.get("origin")
        if request.method not in ("GET", "HEAD") and origin and not options.origin_allowed(origin):
            return _error(403, "a change from another site")
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        if request.query_params.get("token") and _same(request.query_params["token"], token):
            response.set_cookie(
                TOKEN_COOKIE, token, httponly=True, samesite="strict", secure=options.tls
            )
        return response


def _same(given: str, token: str) -> bool:
    return bool(given) and hmac.compare_digest(given.encode(), token.encode())


class Handlers:
    """The routes of one app: each reads the library and answers JSON or a picture."""

    def __init__(self, dataset: Dataset, options: AppOptions, run: Path | None) -> None:
        self.dataset, self.options, self.run = dataset, options, run
        self.catalog = Catalog(dataset)
        self.store = DecisionStore(dataset)
        self.predictor: Any = None

    def routes(self) -> list[Route]:
        return [
            Route("/", self.index),
            Route("/static/{name}", self.static),
            Route("/api/photos", self.photos),
            Route("/api/facets", self.facets),
            Route("/api/photos/{photo}", self.photo),
            Route("/thumb/{photo}", self.image),
            Route("/image/{photo}", self.image),
            Route("/api/groups", self.groups),
            Route("/api/map", self.map_data),
            Route("/api/decisions", self.decisions, methods=["GET", "POST"]),
            Route("/api/decisions/{decision}/undo", self.undo, methods=["POST"]),
            Route("/api/decisions.parquet", self.export),
            Route("/api/predict", self.predict, methods=["POST"]),
            Route("/api/status", self.status),
            Route("/api/regroup", self.regroup, methods=["POST"]),
        ]

    async def status(self, request: Request) -> Response:
        """Whether the duplicate groups include every decision (else: regroup)."""
        current = await run_in_threadpool(self.catalog.groups_current)
        return JSONResponse({"groups_current": current})

    async def regroup(self, request: Request) -> Response:
        """``gpskit dedup`` with its defaults, honouring the decisions (the groups page
        shows a group decision after it)."""
        from gpskit.dedup import dedup

        report = await run_in_threadpool(lambda: dedup(self.dataset, contact_sheet=False))
        return JSONResponse({"groups": report.groups})

    async def index(self, request: Request) -> Response:
        page = (STATIC / "index.html").read_text(encoding="utf-8")
        page = page.replace("{{TOKEN}}", html.escape(self.options.token, quote=True))
        page = page.replace("{{PREDICT}}", "1" if self.run else "0")
        page = page.replace("{{DATASET}}", html.escape(str(self.dataset.root), quote=True))
        return Response(
            page, media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-store"}
        )

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in _STATIC_FILES:
            return PlainTextResponse("not found", status_code=404)
        folder = LEAFLET if name.startswith("leaflet.") else STATIC
        return FileResponse(folder / name, media_type=_STATIC_FILES[name])

    async def photos(self, request: Request) -> Response:
        query = request.query_params
        filters = {k: query.get(k, "") for k in FILTERS}
        offset, limit = _int(query.get("offset"), 0), _int(query.get("limit"), 60)
        return JSONResponse(await run_in_threadpool(self.catalog.page, filters, offset, limit))

    async def facets(self, request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(self.catalog.facets))

    async def photo(self, request: Request) -> Response:
        found = await run_in_threadpool(self.catalog.photo, request.path_params["photo"])
        return _error(404, "no such photo") if found is None else JSONResponse(found)

    async def image(self, request: Request) -> Response:
        side = THUMB_SIDE if request.url.path.startswith("/thumb/") else VIEW_SIDE
        found = await run_in_threadpool(self.catalog.location, request.path_params["photo"])
        if found is None:
            return _error(404, "no such photo")
        root, path, info = found
        data = await run_in_threadpool(
            picture,
            self.dataset,
            root,
            path,
            info["size"],
            info["mtime"],
            info["read_status"],
            side,
        )
        if data is None:
            return Response(placeholder(), media_type="image/svg+xml")
        return Response(
            data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"}
        )

    async def groups(self, request: Request) -> Response:
        query = request.query_params
        offset, limit = _int(query.get("offset"), 0), _int(query.get("limit"), 20)
        found = await run_in_threadpool(self.catalog.groups, offset, limit, query.get("kind", ""))
        return JSONResponse(found)

    async def map_data(self, request: Request) -> Response:
        layers = await run_in_threadpool(self.catalog.coverage_layers)
        return JSONResponse({**layers, "photos": await run_in_threadpool(self.catalog.points)})

    async def decisions(self, request: Request) -> Response:
        if request.method == "GET":
            rows = await run_in_threadpool(self.store.decisions)
            newest = rows[-SHOWN_DECISIONS:]  # the page lists these; export gives every one
            return JSONResponse({"total": len(rows), "decisions": [d.to_dict() for d in newest]})
        body = await _json_body(request)
        if isinstance(body, Response):
            return body
        ids = body.get("photos")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            return _error(400, "photos: a list of photo ids")
        if len(ids) > MAX_PHOTOS:
            return _error(413, f"a decision names at most {MAX_PHOTOS:,} photos")
        keys = await run_in_threadpool(self.catalog.keys, ids)
        if keys is None:
            return _error(404, "no such photo")
        note, kind = body.get("note"), body.get("kind")
        if not isinstance(kind, str) or not (note is None or isinstance(note, str)):
            return _error(400, "kind is text, and a note text or absent")
        made = await run_in_threadpool(
            self.store.add, kind, keys, body.get("value"), body.get("author"), note or None
        )
        return JSONResponse(made.to_dict(), status_code=201)

    async def undo(self, request: Request) -> Response:
        body = await _json_body(request)
        if isinstance(body, Response):
            return body
        done = await run_in_threadpool(
            self.store.undo, request.path_params["decision"], body.get("author")
        )
        return JSONResponse(done.to_dict())

    async def export(self, request: Request) -> Response:
        with tempfile.TemporaryDirectory() as folder:
            target = Path(folder) / "decisions.parquet"
            await run_in_threadpool(self.store.export, target)
            data = target.read_bytes()
        name = f"decisions-{time.strftime('%Y%m%d-%H%M%S')}.parquet"
        disposition = f'attachment; filename="{name}"'
        return Response(data, media_type="application/vnd.apache.parquet",
                        headers={"Content-Disposition": disposition})  # fmt: skip

    async def predict(self, request: Request) -> Response:
        if self.run is None:
            return _error(404, "start the app with --run RUN to predict")
        limit = self.options.max_upload_bytes
        data = await _body(request, limit)
        if isinstance(data, Response):
            return data
        try:
            image = await run_in_threadpool(
                decode_upload, data, limit, self.options.max_upload_pixels
            )
            if self.predictor is None:
                from gpskit.api import load_model

                self.predictor = await run_in_threadpool(load_model, self.run)
            found = await run_in_threadpool(self.predictor.predict, image)
        except GpskitError as exc:
            return _error(400, str(exc))
        return JSONResponse(self._placed(found))

    def _placed(self, found: Any) -> dict[str, Any]:
        """A prediction as JSON, its neighbours with their photo ids where the dataset
        has them (so the page shows their thumbnails)."""
        frame = self.catalog.snapshot().frame
        ids = {
            str(Path(r) / p): i for i, r, p in zip(frame.id, frame.root, frame.path, strict=True)
        }
        return {
            "latitude": found.latitude,
            "longitude": found.longitude,
            "method": found.method,
            "neighbours": [{**n.__dict__, "id": ids.get(str(n.path))} for n in found.neighbours],
        }


def create_app(
    dataset: Dataset, options: AppOptions, run: Path | None = None, collector: Any = None
) -> Starlette:
    """The app for one dataset folder (and a trained run for the predict page; with a
    :class:`gpskit.collect.Collector`, the collect page)."""
    handlers = Handlers(dataset, options, run)
    routes = handlers.routes()
    if collector is not None:
        from gpskit.app.collectweb import CollectHandlers

        collect = CollectHandlers(collector, options.token, options.max_upload_bytes)
        routes += collect.routes()
        routes.append(Route("/collect/qr.svg", _qr(options)))
    app = Starlette(
        routes=routes,
        middleware=[Middleware(Guard, options=options)],
        exception_handlers={GpskitError: _gpskit_error, OSError: _environment_error},
    )
    app.state.catalog = handlers.catalog
    return app


def _qr(options: AppOptions) -> Any:
    """The phone URL as a QR code (SVG), for the laptop's screen."""

    async def qr(request: Request) -> Response:
        import io

        import segno

        buffer = io.BytesIO()
        segno.make(options.phone_url(), error="m").save(buffer, kind="svg", scale=6, border=2)
        return Response(buffer.getvalue(), media_type="image/svg+xml")

    return qr


_STATIC_FILES = {
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "collect.js": "text/javascript; charset=utf-8",
    "collect.css": "text/css; charset=utf-8",
    "leaflet.js": "text/javascript; charset=utf-8",
    "leaflet.css": "text/css; charset=utf-8",
}


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


async def _json_body(request: Request) -> dict[str, Any] | Response:
    data = await _body(request, MAX_JSON)
    if isinstance(data, Response):
        return data
    try:
        body = json.loads(data or b"{}")
    except (ValueError, RecursionError):
        return _error(400, "the body is not JSON (or nested too deep)")
    return body if isinstance(body, dict) else _error(400, "the body is not a JSON object")
