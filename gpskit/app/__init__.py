"""``gpskit app``: a local web app to look at a dataset and decide (see docs/app.md).

Photos filtered by status, reason, warning, check, split, duplicate group and cell; each
photo's EXIF, checks, position and heading; duplicate groups side by side with their
evidence; the coverage map; with a trained run, a predict page. What a person decides is
kept in the dataset's decision store (:mod:`gpskit.decisions`), which every step honours.

Layers: :mod:`~gpskit.app.catalog` (the rows, filtered and paged),
:mod:`~gpskit.app.images` (thumbnails, uploads), :mod:`~gpskit.app.server` (the web
layer), ``static/`` (the page), :mod:`~gpskit.app.options` at the bottom. Needs
``gpskit[app]`` (Starlette, uvicorn).
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable
from pathlib import Path

from gpskit.app.options import AppOptions
from gpskit.collect.options import CollectOptions
from gpskit.dataset import Dataset
from gpskit.errors import EnvironmentProblem, require_module

__all__ = ["AppOptions", "bind", "serve"]


def bind(options: AppOptions) -> socket.socket:
    """A listening socket on ``options.host``/``port`` (port 0: a free one, set back)."""
    family = socket.AF_INET6 if ":" in options.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((options.host, options.port))
    except OSError as exc:
        sock.close()
        hint = "choose another --port (0: any free one), or stop what uses it"
        if exc.errno == errno.EADDRNOTAVAIL:
            hint = "--host must be an address of this machine (0.0.0.0: all of them)"
        raise EnvironmentProblem(
            f"cannot listen on {options.host}:{options.port} ({exc.strerror or exc})",
            hint=hint,
        ) from None
    sock.listen(128)
    options.port = sock.getsockname()[1]
    return sock


def serve(
    dataset: Dataset | Path,
    options: AppOptions | None = None,
    run: Path | None = None,
    ready: Callable[[str], None] | None = None,
    collect: CollectOptions | None = None,
) -> None:
    """Serve the app until interrupted; ``ready(url)`` is called once it listens. With
    ``collect``, also the collect page (and HTTPS when ``options.tls``)."""
    options = options or AppOptions()
    options.validate()
    data = Dataset.at(dataset)
    uvicorn = require_module("uvicorn", "gpskit app needs uvicorn and starlette", "gpskit[app]")
    require_module("starlette", "gpskit app needs uvicorn and starlette", "gpskit[app]")
    from gpskit.app.server import create_app

    collector = None
    if collect is not None:
        from gpskit.collect import Collector

        collector = Collector(data, collect)
        collector.prepare()
    data.require_manifest()
    sock = bind(options)
    tls: dict[str, str] = {}
    if options.tls:
        from gpskit.collect.tls import ensure_certificate, local_addresses

        addresses = local_addresses()
        options.public_address = options.public_address or (
            addresses[0] if options.host in ("0.0.0.0", "::") else options.host
        )
        names = sorted({*addresses, options.public_address} - {"0.0.0.0", "::"})
        certificate = ensure_certificate(data.state_dir, names)
        tls = {"ssl_certfile": str(certificate.cert), "ssl_keyfile": str(certificate.key)}
    app = create_app(data, options, run, collector)
    app.state.catalog.snapshot()  # built before the URL is shown: the first page is quick
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="off",
        timeout_graceful_shutdown=2, **tls,
    )  # fmt: skip
    server = uvicorn.Server(config)
    if ready is not None:
        ready(options.phone_url() if collector is not None else options.url())
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
