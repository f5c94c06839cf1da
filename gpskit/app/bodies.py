"""Request bodies read under a limit, and errors as one JSON line: what every route of
the app and of the collect page share."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response


def error_response(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def read_body(request: Request, limit: int) -> bytes | Response:
    """The request's body, refused past ``limit`` bytes (counted as it arrives)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return error_response(413, f"more than {limit:,} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return error_response(413, f"more than {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
