"""Photos in object storage: a real S3 API (moto's server, over HTTP) read by gpskit's
own ingest workers, compared with the same files read from disk."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from gpskit import storage
from gpskit.cli import app
from gpskit.errors import InputError, MissingDependencyError
from gpskit.imaging import decode_oriented
from gpskit.ingest import IngestOptions, ingest
from gpskit.schema import load_schema, read_table
from gpskit.storage import as_location, is_url, join, list_remote

from .helpers import REASON_FILES

pytest.importorskip("s3fs", reason="S3 tests need s3fs (pip install 'gpskit[s3]')")
moto_server = pytest.importorskip("moto.server", reason="S3 tests need moto[server]")

#: Columns that say where a file is, not what it holds.
WHERE = ["root", "path", "mtime_ns"]


@pytest.fixture(scope="module")
def s3(reason_set: Path) -> Iterator[Any]:
    """A local S3 server holding the reason set under s3://photos/campus/."""
    import s3fs

    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    saved = dict(os.environ)
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL=f"http://{host}:{port}",
    )
    s3fs.S3FileSystem.clear_instance_cache()
    fs = s3fs.S3FileSystem()
    fs.mkdir("photos")
    for name in sorted(REASON_FILES):
        fs.pipe(f"photos/campus/{name}", (reason_set / name).read_bytes())
    try:
        yield fs
    finally:
        os.environ.clear()
        os.environ.update(saved)
        s3fs.S3FileSystem.clear_instance_cache()
        server.stop()


def _rows(dataset: Path) -> list[dict[str, Any]]:
    table = read_table(dataset / "manifest.parquet", load_schema("manifest"))
    rows = table.drop_columns(WHERE).to_pylist()
    return sorted(rows, key=lambda r: (r["sha256"] or "", str(r["error"])))


def test_s3_inputs_ingest_the_same_rows_as_the_files_on_disk(
    s3: Any, reason_set: Path, tmp_path: Path
) -> None:
    ingest([reason_set], tmp_path / "disk", IngestOptions(workers=2))
    report = ingest(["s3://photos/campus"], tmp_path / "s3", IngestOptions(workers=2))
    assert report.files == len(REASON_FILES) and report.read == len(REASON_FILES)
    assert _rows(tmp_path / "s3") == _rows(tmp_path / "disk")
    table = read_table(tmp_path / "s3" / "manifest.parquet", load_schema("manifest"))
    assert set(table.column("root").to_pylist()) == {"s3://photos/campus"}
    paths, reasons = table.column("path").to_pylist(), table.column("reasons").to_pylist()
    by_path = dict(zip(paths, reasons, strict=True))
    for name, reason in REASON_FILES.items():
        assert by_path[name] == ([reason] if reason else []), name
    again = ingest(["s3://photos/campus/"], tmp_path / "s3", IngestOptions(workers=2))
    assert (again.read, again.reused) == (0, len(REASON_FILES))  # same size and time: reused


def test_one_object_and_a_changed_object(s3: Any, reason_set: Path, tmp_path: Path) -> None:
    report = ingest(["s3://photos/campus/good.jpg"], tmp_path, IngestOptions(workers=1))
    assert (report.files, report.accepted) == (1, 1)
    s3.pipe("photos/extra/good.jpg", (reason_set / "good.jpg").read_bytes())
    s3.pipe("photos/extra/later.jpg", (reason_set / "tiny.jpg").read_bytes())
    report = ingest(["s3://photos/extra"], tmp_path, IngestOptions(workers=1))
    assert (report.files, report.read, report.kept) == (3, 2, 1)


def test_no_decode_reads_headers_from_s3(s3: Any, reason_set: Path, tmp_path: Path) -> None:
    ingest([reason_set], tmp_path / "disk", IngestOptions(decode=False, workers=1))
    ingest(["s3://photos/campus"], tmp_path / "s3", IngestOptions(decode=False, workers=1))
    assert _rows(tmp_path / "s3") == _rows(tmp_path / "disk")


def test_an_s3_photo_decodes_as_its_file_does(s3: Any, reason_set: Path) -> None:
    remote = decode_oriented("s3://photos/campus/good.jpg", max_side=96)
    local = decode_oriented(reason_set / "good.jpg", max_side=96)
    assert remote.tobytes() == local.tobytes()


def test_missing_bucket_or_prefix_is_one_line(s3: Any, tmp_path: Path) -> None:
    for url, message in (
        ("s3://no-such-bucket/x", "cannot be listed"),
        ("s3://photos/nothing-here", "no such location"),
    ):
        result = CliRunner().invoke(app, ["ingest", url, "--out", str(tmp_path)])
        assert result.exit_code != 0
        assert message in result.output and "Traceback" not in result.output
        assert url in result.output


@pytest.mark.slow
def test_a_listing_streams_page_by_page(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """More objects than one LIST page (1,000), taken 7 at a time: every object once, folder
    markers left out, and never through ``find`` (which holds the whole listing, and
    caches it)."""
    names = {f"walk/d{i % 3}/p{i:04d}.jpg": b"x" * (i % 5) for i in range(1_003)}
    s3.pipe({f"photos/{name}": data for name, data in names.items()})
    s3.pipe("photos/walk/d0/", b"")  # a folder marker, as consoles make them
    monkeypatch.setattr(storage, "LIST_CHUNK", 7)
    monkeypatch.setattr(type(s3), "find", lambda *a, **k: pytest.fail("listed whole"))
    root, listed = storage.list_remote("s3://photos/walk")
    assert root == "s3://photos/walk" and not isinstance(listed, list)
    found = {item.relative: item.size for item in listed}
    assert found == {name.removeprefix("walk/"): len(data) for name, data in names.items()}


_SEGMENT = st.text(
    st.characters(blacklist_categories=["Cs", "Cc"], blacklist_characters="/"),
    min_size=1,
    max_size=8,
).filter(lambda seg: seg not in {".", ".."})


@pytest.mark.slow
@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    keys=st.sets(st.lists(_SEGMENT, min_size=1, max_size=3).map("/".join), min_size=1, max_size=5),
    markers=st.booleans(),
)
def test_any_object_names_are_listed_and_read_as_they_are(
    s3: Any, keys: set[str], markers: bool, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Any object names (any Unicode but controls, spaces, ``%``, ``+``, ``?``, ``#``...),
    with or without folder markers beside them: each object listed once under its own name
    and size, the markers not at all, and each read by ingest (here: not an image)."""
    prefix = f"named/{uuid.uuid4().hex}"
    objects = {key: key.encode()[:7] for key in keys}
    s3.pipe({f"photos/{prefix}/{key}": data for key, data in objects.items()})
    if markers:
        s3.pipe({f"photos/{prefix}/{key.rsplit('/', 1)[0]}/": b"" for key in keys if "/" in key})
    root, listed = list_remote(f"s3://photos/{prefix}")
    assert root == f"s3://photos/{prefix}"
    found = [(item.relative, item.size) for item in listed]
    assert sorted(found) == sorted((key, len(data)) for key, data in objects.items())
    dataset = tmp_path_factory.mktemp("named")
    ingest([f"s3://photos/{prefix}"], dataset, IngestOptions(workers=1))
    table = read_table(dataset / "manifest.parquet", load_schema("manifest"))
    rows = dict(zip(table["path"].to_pylist(), table["read_status"].to_pylist(), strict=True))
    assert rows == {key: "not_image" if objects[key] else "empty" for key in objects}


def test_a_listing_that_fails_part_way_is_one_clear_error() -> None:
    """A store that stops answering in the middle of a listing: one line naming the URL,
    not a traceback."""

    def entries() -> Iterator[dict[str, Any]]:
        yield {"name": "bucket/p/a.jpg", "size": 1, "type": "file"}
        raise OSError("connection reset")

    listed = storage._objects("s3://bucket/p", "bucket/p", entries())
    assert next(listed).relative == "a.jpg"
    with pytest.raises(InputError, match=r"s3://bucket/p: the listing failed part-way"):
        next(listed)


def test_urls_and_paths_are_told_apart() -> None:
    assert is_url("s3://bucket/a") and is_url("gs://b") and not is_url("photos/")
    assert not is_url("file:///tmp/x") and as_location("file:///tmp/x") == Path("/tmp/x")
    assert as_location("s3://bucket/prefix/") == "s3://bucket/prefix"
    assert as_location("C:photos") == Path("C:photos")
    assert join("s3://bucket/p/", "a/b.jpg") == "s3://bucket/p/a/b.jpg"


def test_without_fsspec_a_url_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("fsspec", "fsspec.core"):
        monkeypatch.setitem(sys.modules, name, None)  # None: an import raises ImportError
    with pytest.raises(MissingDependencyError, match=r"gpskit\[s3\]"):
        list_remote("s3://bucket/prefix")


@pytest.mark.parametrize("case", ["refused", "no credentials"])
def test_an_unreachable_store_or_missing_credentials_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    """The environment, not gpskit: exit 74 and one line, not an internal error."""
    s3fs = pytest.importorskip("s3fs")
    s3fs.S3FileSystem.clear_instance_cache()  # no client from an earlier test
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.aws
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    if case == "refused":
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "key")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    result = CliRunner().invoke(
        app, ["ingest", "s3://bucket/photos", "--out", str(tmp_path / "ds")]
    )
    assert result.exit_code == 74, result.output
    assert "internal error" not in result.output
    assert ("cannot be reached" if case == "refused" else "no credentials") in result.output
