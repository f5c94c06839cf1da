"""Collect (gpskit.collect): a shot saved with the page's measurement in its EXIF, read
back by ingest and by ExifTool, judged with every check (a 40 m fix is rejected), never
kept twice; the live coverage; the certificate phones need; the web layer's guard."""

from __future__ import annotations

import io
import json
import shutil
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import piexif
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from gpskit.app import AppOptions, bind
from gpskit.collect import CollectOptions, Collector
from gpskit.collect.shots import Shot
from gpskit.collect.tls import ensure_certificate
from gpskit.errors import InputError
from gpskit.regions import load_region

from .helpers import live_app, photo

#: Inside the default region (Penn's campus), a few metres apart.
CENTRE = load_region("penn_campus").geometry.centroid
LAT, LON = float(CENTRE.y), float(CENTRE.x)


def jpeg(seed: int = 0, exif: bytes | None = None) -> bytes:
    buffer = io.BytesIO()
    kwargs = {"exif": exif} if exif else {}
    photo((640, 480), seed=seed).save(buffer, "JPEG", quality=90, **kwargs)
    return buffer.getvalue()


def shot(shot_id: str, **fields: Any) -> dict[str, Any]:
    now = time.time() * 1000
    described = {
        "id": shot_id,
        "latitude": LAT,
        "longitude": LON,
        "accuracy_m": 5.0,
        "heading": 90.0,
        "heading_ref": "T",
        "taken_ms": now,
        "fix_ms": now - 800,
        "utc_offset_minutes": -300,
        "walker": "ann",
    }
    described.update(fields)
    return described


@pytest.fixture
def collector(tmp_path: Path) -> Collector:
    found = Collector(tmp_path / "ds")
    found.prepare()
    return found


def _rows(collector: Collector) -> list[dict[str, Any]]:
    table = collector.dataset.load_manifest()
    return [r for r in table.to_pylist() if Path(r["root"]).name == "inbox"]


def test_a_shot_lands_in_the_manifest_as_the_page_measured_it(collector: Collector) -> None:
    outcome = collector.receive(shot("shot-000001", heading=271.5, altitude=12.0), jpeg())
    assert outcome.status == "accepted" and not outcome.repeated, outcome
    (row,) = _rows(collector)
    assert row["latitude"] == pytest.approx(LAT, abs=1e-7)
    assert row["longitude"] == pytest.approx(LON, abs=1e-7)
    assert row["img_direction"] == pytest.approx(271.5, abs=1e-3)
    assert row["img_direction_ref"] == "T"
    assert row["gps_h_error"] == pytest.approx(5.0)
    assert row["datetime_original"] is not None
    assert row["gps_timestamp"] is not None
    assert row["path"].endswith("/shot-000001.jpg")


@pytest.mark.skipif(shutil.which("exiftool") is None, reason="ExifTool not installed")
def test_exiftool_reads_the_shot_as_a_phone_photo(collector: Collector) -> None:
    collector.receive(shot("shot-exiftool", heading=45.25, utc_offset_minutes=120), jpeg())
    (path,) = list((collector.dataset.root / "inbox").glob("*/shot-exiftool.jpg"))
    found = json.loads(
        subprocess.run(
            ["exiftool", "-json", "-n", "-GPS:all", "-EXIF:all", str(path)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )[0]
    assert found["GPSLatitude"] == pytest.approx(abs(LAT), abs=1e-6)
    assert found["GPSLongitude"] == pytest.approx(abs(LON), abs=1e-6)
    assert (found["GPSLatitudeRef"], found["GPSLongitudeRef"]) == ("N", "W")
    assert found["GPSImgDirection"] == pytest.approx(45.25, abs=1e-3)
    assert found["GPSImgDirectionRef"] == "T"
    assert found["GPSHPositioningError"] == pytest.approx(5.0)
    assert found["OffsetTimeOriginal"] == "+02:00"
    assert found["Software"].startswith("gpskit collect")


def test_a_40_m_fix_is_rejected_and_the_phone_is_told_why(collector: Collector) -> None:
    outcome = collector.receive(shot("shot-far-fix", accuracy_m=40.0), jpeg(1))
    assert outcome.status == "rejected"
    assert outcome.reasons == ["gps_error_too_large"]
    assert "Take it again" in outcome.message and "30 m" in outcome.message
    (row,) = _rows(collector)
    assert row["status"] == "rejected"  # one row with its reason: nothing lost


def test_a_shot_sent_again_is_kept_once(collector: Collector) -> None:
    first = collector.receive(shot("shot-twice-01"), jpeg(2))
    again = collector.receive(shot("shot-twice-01", latitude=LAT + 0.001), jpeg(3))
    assert not first.repeated and again.repeated
    assert again.status == first.status and again.path == first.path
    assert len(_rows(collector)) == 1
    assert len(list((collector.dataset.root / "inbox").rglob("*.jpg"))) == 1


def test_the_same_shot_from_two_connections_at_once_is_kept_once(collector: Collector) -> None:
    outcomes: list[Any] = []
    threads = [
        threading.Thread(
            target=lambda: outcomes.append(collector.receive(shot("shot-racing-1"), jpeg(4)))
        )
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(o.repeated for o in outcomes) == [False, True, True, True]
    assert len(_rows(collector)) == 1


#: The time now as the camera app of a phone at UTC-5 writes it (the shots' offset).
NOW_HERE = (datetime.now(timezone.utc) - timedelta(hours=5)).strftime("%Y:%m:%d %H:%M:%S")


def test_the_phone_camera_apps_tags_are_kept_its_gps_replaced(collector: Collector) -> None:
    """A file from the phone's camera app (file input): make, model, orientation and capture
    time kept; the GPS the browser stripped (or a stale one) replaced by the page's."""
    own = piexif.dump(
        {
            "0th": {
                piexif.ImageIFD.Make: b"Google",
                piexif.ImageIFD.Model: b"Pixel 8",
                piexif.ImageIFD.Orientation: 6,
            },
            "Exif": {piexif.ExifIFD.DateTimeOriginal: NOW_HERE.encode()},
            "GPS": {
                piexif.GPSIFD.GPSLatitudeRef: b"N",
                piexif.GPSIFD.GPSLatitude: ((1, 1), (0, 1), (0, 1)),
            },
        }
    )
    collector.receive(shot("shot-camera-app"), jpeg(5, exif=own))
    (row,) = _rows(collector)
    assert (row["make"], row["model"], row["orientation"]) == ("Google", "Pixel 8", 6)
    assert row["datetime_original"].startswith(NOW_HERE.replace(":", "-", 2).replace(" ", "T"))
    assert row["latitude"] == pytest.approx(LAT, abs=1e-7)


def test_other_formats_are_saved_as_jpeg_with_the_measurement(collector: Collector) -> None:
    buffer = io.BytesIO()
    photo((320, 240), seed=6).save(buffer, "PNG")
    outcome = collector.receive(shot("shot-png-0001"), buffer.getvalue())
    assert outcome.status == "accepted"
    (row,) = _rows(collector)
    assert row["format"] == "JPEG" and row["latitude"] == pytest.approx(LAT, abs=1e-7)


@pytest.mark.parametrize(
    "data", [b"", b"not a picture", b"\xff\xd8\xff\xe0" + b"\0" * 64], ids=["empty", "text", "cut"]
)
def test_a_picture_that_is_not_one_is_refused_and_nothing_kept(
    collector: Collector, data: bytes
) -> None:
    with pytest.raises(InputError):
        collector.receive(shot("shot-broken-1"), data)
    assert not list((collector.dataset.root / "inbox").rglob("*"))


FIELDS = ["id", "latitude", "longitude", "accuracy_m", "heading", "heading_ref", "taken_ms",
          "fix_ms", "utc_offset_minutes", "altitude", "walker"]  # fmt: skip


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.sampled_from(FIELDS),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(-(2**70), 2**70),
            st.floats(allow_nan=True, allow_infinity=True),
            st.text(max_size=80),
            st.lists(st.integers(), max_size=3),
        ),
    )
)
def test_any_description_is_a_shot_or_one_clear_refusal(description: dict[str, Any]) -> None:
    try:
        found = Shot.from_dict(description)
    except InputError as exc:
        assert "\n" not in str(exc)
        return
    assert -90 <= found.latitude <= 90 and -180 <= found.longitude <= 180
    assert found.heading is None or 0 <= found.heading < 360
    found.exif(None)  # any accepted shot can be written


def test_a_phone_clock_in_1970_is_refused() -> None:
    with pytest.raises(InputError, match="clock"):
        Shot.from_dict(shot("shot-clock-01", taken_ms=1000.0))


# --- live coverage ---------------------------------------------------------------------------


def test_coverage_grows_with_each_shot(collector: Collector) -> None:
    before = collector.state()
    for k, heading in enumerate((0.0, 45.0, 90.0)):
        collector.receive(shot(f"shot-spot-{k:03d}", heading=heading), jpeg(10 + k))
    after = collector.state()
    assert after["version"] == before["version"] + 3
    assert after["figures"]["covered_cells"] == before["figures"]["covered_cells"] + 1
    (spot,) = after["spots"]
    assert spot["have"] == [0, 1, 2] and spot["missing"] == [3, 4, 5, 6, 7]
    assert [r["id"] for r in after["recent"]] == [f"shot-spot-{k:03d}" for k in range(3)]
    assert after["declination"] == pytest.approx(-11.6)  # the region says so


# --- the certificate ----------------------------------------------------------------------


def test_a_certificate_for_the_laptops_addresses_made_once(tmp_path: Path) -> None:
    from cryptography import x509

    first = ensure_certificate(tmp_path, ["127.0.0.1", "192.0.2.7"])
    original = first.cert.read_bytes()
    assert stat.S_IMODE(first.key.stat().st_mode) == 0o600
    made = x509.load_pem_x509_certificate(first.cert.read_bytes())
    names = made.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(a) for a in names.get_values_for_type(x509.IPAddress)} == {
        "127.0.0.1",
        "192.0.2.7",
    }
    assert (made.not_valid_after_utc - made.not_valid_before_utc).days <= 398
    again = ensure_certificate(tmp_path, ["192.0.2.7"])
    assert again.cert.read_bytes() == original  # still covers: reused
    moved = ensure_certificate(tmp_path, ["192.0.2.99"])  # a new network: a new one
    assert moved.cert.read_bytes() != original
    first.cert.write_text("damaged")
    assert ensure_certificate(tmp_path, ["192.0.2.99"]).cert.read_bytes().startswith(b"-----")


# --- the web layer ------------------------------------------------------------------------------


@contextmanager
def serving(
    dataset: Path, tls: bool = False, **options: Any
) -> Iterator[tuple[str, AppOptions, Collector]]:
    """The app with the collect page on a free loopback port, in a thread (``tls``: over
    HTTPS with the certificate gpskit makes, as phones reach it)."""
    collector = Collector(dataset, CollectOptions())
    collector.prepare()
    with live_app(dataset, None, collector, tls, **options) as (url, settings):
        yield url, settings, collector


def _post(client: httpx.Client, description: dict[str, Any], data: bytes, token: str | None) -> Any:
    headers = {"X-Gpskit-Shot": quote(json.dumps(description))}
    if token is not None:
        headers["X-Gpskit-Token"] = token
    return client.post("/api/collect/shots", content=data, headers=headers)


def test_without_the_token_a_shot_changes_nothing(tmp_path: Path) -> None:
    with serving(tmp_path / "ds") as (url, options, _), httpx.Client(base_url=url) as c:
        assert _post(c, shot("shot-no-token"), jpeg(), None).status_code == 403
        assert _post(c, shot("shot-no-token"), jpeg(), "x" * 32).status_code == 403
        assert not list((tmp_path / "ds" / "inbox").rglob("*.jpg"))
        created = _post(c, shot("shot-token-ok"), jpeg(), options.token)
        assert created.status_code == 201 and created.json()["status"] == "accepted"
        again = _post(c, shot("shot-token-ok"), jpeg(), options.token)
        assert again.status_code == 200 and again.json()["repeated"]
        bad = c.post(
            "/api/collect/shots",
            content=jpeg(),
            headers={"X-Gpskit-Token": options.token, "X-Gpskit-Shot": "{nope"},
        )
        assert bad.status_code == 400 and "not JSON" in bad.json()["error"]


def test_a_shot_too_large_is_refused_before_it_is_read(tmp_path: Path) -> None:
    with (
        serving(tmp_path / "ds", max_upload_bytes=10_000) as (url, options, _),
        httpx.Client(base_url=url) as client,
    ):
        refused = _post(client, shot("shot-too-big1"), jpeg(), options.token)
    assert refused.status_code == 413
    assert not list((tmp_path / "ds" / "inbox").rglob("*.jpg"))


def test_every_page_hears_of_each_new_shot(tmp_path: Path) -> None:
    """Server-sent events: a second phone's page hears the first one's shot."""
    heard: list[dict[str, Any]] = []

    def listen(url: str) -> None:
        with (
            httpx.Client(base_url=url, timeout=20) as client,
            client.stream("GET", "/api/collect/events") as events,
        ):
            for line in events.iter_lines():
                if line.startswith("data: "):
                    heard.append(json.loads(line[6:]))
                    return

    with serving(tmp_path / "ds") as (url, options, _):
        listener = threading.Thread(target=listen, args=(url,), daemon=True)
        listener.start()
        time.sleep(0.5)
        with httpx.Client(base_url=url) as client:
            assert _post(client, shot("shot-heard-01"), jpeg(), options.token).status_code == 201
        listener.join(20)
    assert heard and heard[0]["id"] == "shot-heard-01" and heard[0]["type"] == "shot"
    assert heard[0]["status"] == "accepted"


def test_the_time_the_page_measured_is_the_photos(collector: Collector) -> None:
    taken = datetime(2026, 12, 7, 15, 30, 0, tzinfo=timezone.utc)
    collector.receive(
        shot("shot-when-001", taken_ms=taken.timestamp() * 1000, utc_offset_minutes=-300),
        jpeg(),
    )
    (row,) = _rows(collector)
    assert row["datetime_original"].startswith("2026-12-07T10:30:00")
    assert row["datetime_original_utc"] == taken


def test_image_sizes_limits_apply(tmp_path: Path) -> None:
    small = Collector(tmp_path / "ds", CollectOptions(max_shot_pixels=1000))
    small.prepare()
    with pytest.raises(InputError, match="pixels"):
        small.receive(shot("shot-pixels-1"), jpeg())
    assert Image.open(io.BytesIO(jpeg())).size == (640, 480)


# --- what an outside review broke (each class, fixed) -------------------------------------------


def test_numbers_of_hundreds_of_digits_are_refused_in_one_line() -> None:
    for name in ("latitude", "accuracy_m", "taken_ms"):
        with pytest.raises(InputError, match="between"):
            Shot.from_dict(shot("shot-bigint-1", **{name: 10**400}))


def test_a_name_with_direction_overrides_is_refused() -> None:
    with pytest.raises(InputError, match="direction"):
        Shot.from_dict(shot("shot-bidi-001", walker="ann\u202egpj.exe"))


@pytest.mark.parametrize(
    "sample", ["Pillow/Tests/images/truncated_app14.jpg", "Pillow/Tests/images/app13.jpg"]
)
def test_jpegs_whose_segments_piexif_cannot_walk_are_kept_or_refused(
    collector: Collector, shared_samples: Path, sample: str
) -> None:
    path = shared_samples / sample
    if not path.exists():
        pytest.skip(f"{sample} is not among the shared samples")
    try:
        outcome = collector.receive(shot("shot-odd-jpeg"), path.read_bytes())
    except InputError:
        assert not list((collector.dataset.root / "inbox").rglob("*.jpg"))
        return
    (row,) = _rows(collector)
    assert outcome.status == row["status"]
    assert row["latitude"] == pytest.approx(LAT, abs=1e-7)


def test_a_photo_whose_own_tags_fill_the_segment_keeps_its_make_and_gets_the_gps(
    collector: Collector,
) -> None:
    own = piexif.dump(
        {
            "0th": {piexif.ImageIFD.Make: b"Google", piexif.ImageIFD.Model: b"Pixel 8"},
            "Exif": {piexif.ExifIFD.UserComment: b"ASCII\0\0\0" + b"x" * 65_000},
        }
    )
    outcome = collector.receive(shot("shot-full-app1"), jpeg(7, exif=own))
    assert outcome.status == "accepted"
    (row,) = _rows(collector)
    assert (row["make"], row["model"]) == ("Google", "Pixel 8")
    assert row["latitude"] == pytest.approx(LAT, abs=1e-7)


def test_a_photo_from_the_gallery_is_refused(collector: Collector) -> None:
    """The page writes the position it measures now: a photo taken at another time would
    get a position it was not taken at."""
    old = piexif.dump({"Exif": {piexif.ExifIFD.DateTimeOriginal: b"2024:05:01 10:00:00"}})
    with pytest.raises(InputError, match="not when the page measured"):
        collector.receive(shot("shot-gallery-1"), jpeg(8, exif=old))
    assert not _rows(collector)


HOLD_LOCK = """
import sys, time
from gpskit.dataset import Dataset
with Dataset(sys.argv[1]).writing("ingest"):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_shot_saved_while_the_dataset_was_busy_is_judged_when_sent_again(
    collector: Collector,
) -> None:
    from gpskit.dataset import DatasetBusyError

    holder = subprocess.Popen(  # another gpskit writing the dataset
        [sys.executable, "-c", HOLD_LOCK, str(collector.dataset.root)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(DatasetBusyError):
            collector.receive(shot("shot-busy-001", accuracy_m=40.0), jpeg(9))
    finally:
        holder.kill()
        holder.wait()
    again = collector.receive(shot("shot-busy-001", accuracy_m=40.0), jpeg(9))
    assert again.repeated and again.status == "rejected"
    assert again.reasons == ["gps_error_too_large"]
    assert [r["id"] for r in collector.state()["recent"]] == ["shot-busy-001"]


@pytest.mark.parametrize("what", ["inbox link", "inbox file", "day link", "day file"])
def test_an_inbox_that_is_not_the_datasets_own_folder_is_refused(tmp_path: Path, what: str) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    dataset = tmp_path / "ds"
    dataset.mkdir()
    inbox = dataset / "inbox"
    if what.startswith("inbox"):
        if what == "inbox link":
            inbox.symlink_to(elsewhere)
        else:
            inbox.write_text("x")
        with pytest.raises(InputError, match="inbox"):
            Collector(dataset).prepare()
        assert not list(elsewhere.iterdir())
        return
    found = Collector(dataset)
    found.prepare()
    day = inbox / datetime.now(timezone.utc).strftime("%Y-%m-%d")
    if what == "day link":
        day.symlink_to(elsewhere)
    else:
        day.write_text("x")
    with pytest.raises(InputError, match="day folder"):
        found.receive(shot("shot-day-0001"), jpeg())
    assert not list(elsewhere.iterdir())


def test_a_grid_the_page_cannot_draw_is_refused_at_start(tmp_path: Path) -> None:
    from gpskit.errors import GpskitError

    with pytest.raises(GpskitError, match="cells"):
        Collector(tmp_path / "ds", CollectOptions(cell_m=0.001)).prepare()


def test_the_description_header_may_be_raw_utf8_but_not_broken(tmp_path: Path) -> None:
    with serving(tmp_path / "ds") as (url, options, _), httpx.Client(base_url=url) as client:
        raw = json.dumps(shot("shot-utf8-001", walker="Zoë")).encode("utf-8")
        headers = {"X-Gpskit-Token": options.token, "X-Gpskit-Shot": raw.decode("latin-1")}
        sent = client.post("/api/collect/shots", content=jpeg(), headers=headers)
        assert sent.status_code == 201, sent.text
        headers["X-Gpskit-Shot"] = quote(json.dumps(shot("shot-utf8-002"))) + "%FF"
        broken = client.post("/api/collect/shots", content=jpeg(), headers=headers)
        assert broken.status_code == 400
    (saved,) = list((tmp_path / "ds" / "inbox").rglob("shot-utf8-001.jpg"))
    assert piexif.load(str(saved))["0th"][piexif.ImageIFD.Artist] == "Zoë".encode()


def test_an_address_not_of_this_machine_says_so() -> None:
    from gpskit.errors import EnvironmentProblem

    with pytest.raises(EnvironmentProblem) as refused:
        bind(AppOptions(host="203.0.113.7", port=0))
    assert refused.value.hint is not None and "--host" in refused.value.hint


# --- the whole class of hostile input, generated -------------------------------------------------

#: A phone camera app's JPEG: tags of its own (make, model, orientation, time) to mutate.
CAMERA_JPEG = jpeg(
    20,
    exif=piexif.dump(
        {
            "0th": {piexif.ImageIFD.Make: b"Google", piexif.ImageIFD.Orientation: 6},
            "Exif": {piexif.ExifIFD.DateTimeOriginal: NOW_HERE.encode()},
        }
    ),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_any_mutated_picture_is_kept_or_refused_in_one_line(
    collector: Collector, data: st.DataObject
) -> None:
    """Byte mutations of a camera JPEG (flipped bytes in its header and tags, cuts,
    inserted runs): the shot is kept with the page's position, or refused with one line
    and nothing left in the inbox; never another error."""
    picture = bytearray(CAMERA_JPEG)
    for _ in range(data.draw(st.integers(1, 6))):
        kind = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        at = data.draw(st.integers(0, min(len(picture) - 1, 2048)))  # headers and tags
        if kind == "flip":
            picture[at] = data.draw(st.integers(0, 255))
        elif kind == "cut":
            del picture[at : at + data.draw(st.integers(1, 64))]
        else:
            picture[at:at] = data.draw(st.binary(min_size=1, max_size=64))
    shot_id = f"shot-mut-{data.draw(st.integers(0, 10**9)):010d}"
    before = set((collector.dataset.root / "inbox").rglob("*.jpg"))
    try:
        outcome = collector.receive(shot(shot_id), bytes(picture))
    except InputError as exc:
        assert "\n" not in str(exc)
        assert set((collector.dataset.root / "inbox").rglob("*.jpg")) == before
        return
    row = next(r for r in _rows(collector) if r["path"] == outcome.path)
    assert row["latitude"] == pytest.approx(LAT, abs=1e-7)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_description_header_is_text_or_a_value_error(raw: str) -> None:
    """Whatever a client puts in X-Gpskit-Shot: decoded text or a ValueError (a 400),
    never another exception (a 500)."""
    from gpskit.app.collectweb import _header_text

    try:
        header = raw.encode("utf-8").decode("latin-1")  # what HTTP hands over
    except UnicodeError:
        return
    try:
        text = _header_text(header)
    except ValueError:
        return
    assert isinstance(text, str)
