"""``gpskit app [DATASET_DIR]``: a local web app to look at the photos and decide."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gpskit.cli._common import DatasetArg, console, dataset_at, styled

EPILOG = """
Examples:

    gpskit app                                    # http://127.0.0.1:8765, this machine only

    gpskit app campus/ --run campus/runs/latest   # with the predict page

    gpskit app campus/ --host 0.0.0.0 --port 0    # the team's network: the URL has a token

    gpskit app campus/ --collect                  # phones walk and shoot: HTTPS, a QR code
"""


def app_command(
    dataset: DatasetArg = None,
    run: Annotated[
        Path | None,
        typer.Option(
            help="A run or published model folder: adds the predict page.", show_default=False
        ),
    ] = None,
    host: Annotated[
        str | None,
        typer.Option(
            help="Address to listen on; other than loopback, every request needs the printed "
            "token. Default: 127.0.0.1, or every address (0.0.0.0) with --collect.",
            show_default=False,
        ),
    ] = None,
    port: Annotated[int, typer.Option(help="Port (0: any free one).")] = 8765,
    token: Annotated[
        str | None,
        typer.Option(
            help="The access token (default: a new random one each start).", show_default=False
        ),
    ] = None,
    max_upload_mb: Annotated[
        float, typer.Option(help="Largest photo the predict page accepts (MB).")
    ] = 40.0,
    collect: Annotated[
        bool,
        typer.Option(
            "--collect",
            help="Also serve the collect page for phones: live position, compass, coverage and "
            "a shutter; each shot is saved in DATASET/inbox and ingested at once.",
        ),
    ] = False,
    region: Annotated[
        str,
        typer.Option(help="With --collect: the region walked (bundled name or GeoJSON file)."),
    ] = "penn_campus",
    cell: Annotated[float, typer.Option(help="With --collect: coverage cell size (m).")] = 20.0,
    declination: Annotated[
        float | None,
        typer.Option(
            help="With --collect: magnetic declination (degrees, east positive) that turns the "
            "phone's compass into true headings (default: the region's, else magnetic).",
            show_default=False,
        ),
    ] = None,
    https: Annotated[
        bool | None,
        typer.Option(
            "--https/--no-https",
            help="Serve HTTPS with a certificate made for this machine (default: on with "
            "--collect off loopback: phones give the camera and position to secure pages only).",
            show_default=False,
        ),
    ] = None,
    open_browser: Annotated[
        bool, typer.Option("--open", help="Open the app in this machine's browser.")
    ] = False,
) -> None:
    """Look at the photos and decide: a grid filtered by status, reason, warning, check,
    split, duplicate group and cell; each photo's EXIF, checks and position; duplicate
    groups with their evidence; the coverage map; predict with --run. Decisions (exclude,
    include, split a group, merge, keeper, position, heading) go to DATASET/decisions.sqlite
    and every step honours them. Stop with Ctrl-C."""
    from gpskit import arguments
    from gpskit.app import AppOptions, serve
    from gpskit.app.options import MAX_UPLOAD_PIXELS, is_loopback
    from gpskit.collect.options import CollectOptions

    arguments.number("--max-upload-mb", max_upload_mb, minimum=0.01, maximum=100_000)
    host = host or ("0.0.0.0" if collect else "127.0.0.1")
    options = AppOptions(host=host, port=port, max_upload_bytes=int(max_upload_mb * 1024**2),
                         max_upload_pixels=MAX_UPLOAD_PIXELS)  # fmt: skip
    options.tls = https if https is not None else (collect and not is_loopback(host))
    collecting = None
    if collect:
        collecting = CollectOptions(region=region, cell_m=cell, declination=declination)
        collecting.validate()
    if token is not None:
        options.token = token
    if run is not None and not run.is_dir():
        from gpskit.errors import InputError

        raise InputError(
            f"--run {run}: no such folder", hint="give a run folder from `gpskit train`"
        )

    def ready(url: str) -> None:
        console.print(styled("gpskit app on ", (url, "bold"), " (Ctrl-C to stop)"))
        if not options.loopback:
            console.print("anyone with this URL (it holds the token) can see and decide")
        if collect and options.loopback:
            console.print("phones cannot reach a loopback address: use --host 0.0.0.0")
        elif collect:
            _show_qr(url)
            warning = "accept the certificate warning" if options.tls else "allow the page"
            console.print(
                f"phones: scan the code on the same Wi-Fi; the first time, {warning} "
                "(docs/collect.md says what to tap)"
            )
        if open_browser:
            import webbrowser

            webbrowser.open(url)

    serve(dataset_at(dataset), options, run, ready, collecting)


def _show_qr(url: str) -> None:
    """The phone URL as a QR code in the terminal (segno, part of gpskit[app])."""
    try:
        import segno
    except ImportError:
        return
    segno.make(url, error="m").terminal(compact=True)


def register(app: typer.Typer) -> None:
    app.command("app", epilog=EPILOG)(app_command)
