"""The collect page in a real browser (Playwright driving the Debian chromium, as a phone:
touch, a small screen, a fake camera, emulated position and compass; skipped, saying why,
where no chromium is installed): walk a route over HTTPS, shoot at each stop, and check
the manifest rows, their EXIF, a second phone's live coverage, a 40 m fix refused, and a
shot taken offline kept on the phone and sent once when the network returns."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gpskit.collect import Collector

from .helpers import launch_chromium
from .test_collect import LAT, LON, serving

#: Stops of the walk: metres east and north of the region's centre.
ROUTE = [(-40.0, 0.0), (0.0, 30.0), (40.0, -20.0)]
HEADINGS = (0.0, 90.0)
DECLINATION = -11.6  # the bundled region's: the page adds it to the magnetic compass


def _at(east: float, north: float) -> tuple[float, float]:
    return LAT + north / 111_195.0, LON + east / (111_195.0 * math.cos(math.radians(LAT)))


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    yield from launch_chromium(
        "--use-fake-device-for-media-stream",  # a camera showing a test pattern
        "--use-fake-ui-for-media-stream",  # the camera prompt answered yes
    )


class Phone:
    """One phone: a mobile browser context with its position and compass under control."""

    def __init__(self, browser: Any, url: str) -> None:
        self.context = browser.new_context(
            viewport={"width": 390, "height": 844},
            is_mobile=True,
            has_touch=True,
            ignore_https_errors=True,  # gpskit's own certificate, as a phone accepts it once
            geolocation={"latitude": LAT, "longitude": LON, "accuracy": 5},
            permissions=["geolocation", "camera", "accelerometer", "gyroscope", "magnetometer"],
        )
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.cdp = self.context.new_cdp_session(self.page)
        self.page.goto(url + "/collect")
        for kind in ("absolute-orientation", "relative-orientation"):
            self.cdp.send("Emulation.setSensorOverrideEnabled", {"enabled": True, "type": kind})
        self.face(0.0)
        self.page.reload()  # sensors made before the override do not follow it
        self.wait("body[data-ready='1']")

    def wait(self, selector: str, timeout: float = 30_000) -> None:
        self.page.wait_for_selector(selector, state="attached", timeout=timeout)

    def walk_to(self, lat: float, lon: float, accuracy: float = 5.0) -> None:
        self.context.set_geolocation({"latitude": lat, "longitude": lon, "accuracy": accuracy})

    def face(self, true_heading: float) -> None:
        """Turn the phone: a compass reading whose true heading (with the region's
        declination) is ``true_heading``."""
        magnetic = (true_heading - DECLINATION) % 360
        half = math.radians((360 - magnetic) % 360) / 2  # alpha turns counter-clockwise
        reading = {"quaternion": {"x": 0, "y": 0, "z": math.sin(half), "w": math.cos(half)}}
        for kind in ("absolute-orientation", "relative-orientation"):
            self.cdp.send("Emulation.setSensorOverrideReadings", {"type": kind, "reading": reading})

    def shoot(self) -> None:
        self.wait("#shutter:not([disabled])")
        self.page.click("#shutter")

    def attribute(self, name: str) -> str | None:
        value: str | None = self.page.get_attribute("body", name)
        return value


def _inbox_rows(dataset: Path) -> list[dict[str, Any]]:
    from gpskit.dataset import Dataset

    rows = Dataset(dataset).load_manifest().to_pylist()
    return [r for r in rows if Path(r["root"]).name == "inbox"]


def _until(condition: Any, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.1)


@pytest.mark.slow
def test_walk_a_route_shooting_and_the_team_sees_it(chromium: Any, tmp_path: Path) -> None:
    dataset = tmp_path / "ds"
    with serving(dataset, tls=True) as (url, _, collector):
        assert url.startswith("https://")
        walker, teammate = Phone(chromium, url), Phone(chromium, url)
        walker.page.fill("#walker", "ann")
        walker.page.dispatch_event("#walker", "change")
        shots = 0
        for east, north in ROUTE:
            lat, lon = _at(east, north)
            walker.walk_to(lat, lon)
            for heading in HEADINGS:
                walker.face(heading)
                walker.wait(f"body[data-heading='{round(heading) % 360}']")
                walker.shoot()
                shots += 1
                walker.wait("body[data-queue='0']")
                _until(lambda n=shots: len(_inbox_rows(dataset)) == n)
        # the other phone heard every shot, live
        teammate.wait(f"body[data-version='{shots}']")
        rows = _inbox_rows(dataset)
        assert all(r["status"] == "accepted" for r in rows), rows
        stops = {(round(r["latitude"], 6), round(r["longitude"], 6)) for r in rows}
        assert stops == {tuple(round(v, 6) for v in _at(e, n)) for e, n in ROUTE}
        assert sorted(round(r["img_direction"]) % 360 for r in rows) == sorted(
            round(h) for h in HEADINGS * len(ROUTE)
        )
        assert {r["img_direction_ref"] for r in rows} == {"T"}
        assert all(r["gps_h_error"] == pytest.approx(5.0) for r in rows)
        state = collector.state()
        assert state["figures"]["spots"] == len(ROUTE)
        assert all(s["have"] == [0, 2] for s in state["spots"])
        # at a spot missing headings, facing a missing one lights it up
        walker.face(180.0)
        walker.wait("body[data-facing-missing='1']")
        if shutil.which("exiftool"):
            path = next((dataset / "inbox").rglob("*.jpg"))
            found = json.loads(
                subprocess.run(
                    ["exiftool", "-json", "-n", "-GPSImgDirection", "-GPSHPositioningError",
                     "-Artist", str(path)],
                    capture_output=True, text=True, check=True,
                ).stdout
            )[0]  # fmt: skip
            assert found["GPSHPositioningError"] == pytest.approx(5.0)
            assert found["Artist"] == "ann"
        assert not walker.errors and not teammate.errors


@pytest.mark.slow
def test_a_40_m_fix_is_refused_and_the_phone_says_so(chromium: Any, tmp_path: Path) -> None:
    with serving(tmp_path / "ds", tls=True) as (url, _, _collector):
        phone = Phone(chromium, url)
        phone.walk_to(LAT, LON, accuracy=40.0)
        phone.wait("#fix.warn")
        phone.shoot()
        phone.wait("#toast.error")
        assert "not kept" in phone.page.inner_text("#toast")
        phone.wait("body[data-queue='0']")
        (row,) = _inbox_rows(tmp_path / "ds")
        assert row["status"] == "rejected" and row["reasons"] == ["gps_error_too_large"]


@pytest.mark.slow
def test_a_shot_taken_offline_is_sent_once_when_the_network_returns(
    chromium: Any, tmp_path: Path
) -> None:
    dataset = tmp_path / "ds"
    with serving(dataset, tls=True) as (url, _, collector):
        phone = Phone(chromium, url)
        phone.shoot()
        _until(lambda: len(_inbox_rows(dataset)) == 1)
        phone.wait("body[data-queue='0']")
        phone.context.set_offline(True)
        phone.walk_to(*_at(10.0, 10.0))
        phone.shoot()
        phone.wait("body[data-queue='1']")
        time.sleep(2)
        assert len(_inbox_rows(dataset)) == 1  # the laptop has not got it
        phone.context.set_offline(False)
        phone.wait("body[data-queue='0']")
        _until(lambda: len(_inbox_rows(dataset)) == 2)
        time.sleep(6)  # another retry round: nothing sent twice
        assert len(_inbox_rows(dataset)) == 2
        assert len(list((dataset / "inbox").rglob("*.jpg"))) == 2
        assert isinstance(collector, Collector)
