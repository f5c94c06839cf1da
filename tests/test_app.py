"""``gpskit app``: the review app over HTTP on loopback and in a real browser (Playwright
driving the Debian chromium; skipped, saying why, where none is installed): filter, open
a group, split it, move a position, reload, and the next ``split`` honours it; tokens,
hosts and paths guarded; hostile names rendered as text; concurrent clients lose nothing."""

from __future__ import annotations

import io
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from gpskit.app import AppOptions
from gpskit.app.server import create_app
from gpskit.dataset import Dataset
from gpskit.decisions import DecisionStore
from gpskit.dedup import dedup
from gpskit.errors import UsageError
from gpskit.exifwrite import save_photo
from gpskit.ingest import IngestOptions, ingest
from gpskit.split import SplitOptions, split
from gpskit.synth import SynthOptions, synth

from .helpers import SHARED, good_exif, launch_chromium, live_app, photo

HOSTILE = "<img src=x onerror=alert(1)><script>alert(2)</script>"


@contextmanager
def running(
    dataset: Path, run: Path | None = None, **options: Any
) -> Iterator[tuple[str, AppOptions]]:
    """The app on a free loopback port, in a thread, until the block ends."""
    with live_app(dataset, run, **options) as found:
        yield found


@pytest.fixture(scope="module")
def campus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic campus with its defects (copies, bursts), ingested, deduplicated and
    covered, plus a photo whose name and EXIF are hostile HTML."""
    work = tmp_path_factory.mktemp("app")
    synth(work / "campus", SynthOptions(spots=10, pitches=(0.0,), size=(320, 240), workers=1))
    hostile = work / "campus" / "photos" / "hostile"
    save_photo(
        photo(seed=99), hostile / f"{HOSTILE}.jpg", good_exif(make=HOSTILE, model="</title><b>x")
    )
    dataset = work / "ds"
    ingest([work / "campus" / "photos"], dataset, IngestOptions(workers=1))
    dedup(dataset)
    from gpskit.coverage import coverage

    coverage(dataset)
    return dataset


@pytest.fixture
def fresh(campus: Path, tmp_path: Path) -> Path:
    """The campus dataset, copied: each test decides on its own."""
    copy = tmp_path / "ds"
    shutil.copytree(campus, copy)
    return copy


def _page(client: httpx.Client, **filters: Any) -> dict[str, Any]:
    response = client.get("/api/photos", params=filters)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_the_api_pages_filters_and_serves_pictures_by_id_only(fresh: Path) -> None:
    with running(fresh) as (url, _), httpx.Client(base_url=url) as client:
        everything = _page(client, limit=500)
        rows = Dataset(fresh).load_manifest(["status", "path"]).to_pandas()
        assert everything["total"] == len(rows)
        rejected = _page(client, status="rejected", limit=500)
        assert rejected["total"] == int((rows.status == "rejected").sum()) > 0
        reason = rejected["photos"][0]["reasons"][0]
        by_reason = _page(client, reason=reason)
        assert all(reason in p["reasons"] for p in by_reason["photos"])
        assert _page(client, offset=5, limit=3)["photos"] == everything["photos"][5:8]
        shown = everything["photos"][0]
        thumb = client.get(f"/thumb/{shown['id']}")
        assert thumb.headers["content-type"] in ("image/jpeg", "image/svg+xml")
        for hostile in ("/thumb/..%2F..%2Fetc%2Fpasswd", "/image/%2Fetc%2Fpasswd", "/static/..%2Fserver.py",
                        "/static/server.py", "/api/photos/..%2Fmanifest.parquet"):  # fmt: skip
            assert client.get(hostile).status_code == 404, hostile
        groups = client.get("/api/groups").json()
        assert groups["total"] > 0 and all(len(g["members"]) > 1 for g in groups["groups"])
        assert sum(m["keep"] for m in groups["groups"][0]["members"]) == 1


def test_changes_need_the_token_and_requests_a_known_host(fresh: Path) -> None:
    with running(fresh) as (url, options), httpx.Client(base_url=url) as client:
        photo_id = _page(client)["photos"][0]["id"]
        body = {"kind": "exclude", "photos": [photo_id], "author": "mallory"}
        assert client.post("/api/decisions", json=body).status_code == 403
        forged = client.post("/api/decisions", json=body, headers={"X-Gpskit-Token": "guess" * 8})
        assert forged.status_code == 403
        cross = client.post(
            "/api/decisions", json=body,
            headers={"X-Gpskit-Token": options.token, "Origin": "http://evil.example"},
        )  # fmt: skip
        assert cross.status_code == 403
        assert client.get("/", headers={"Host": "evil.example"}).status_code == 421  # rebinding
        assert DecisionStore(fresh).decisions() == []  # nothing changed
        made = client.post("/api/decisions", json=body, headers={"X-Gpskit-Token": options.token})
        assert made.status_code == 201 and DecisionStore(fresh).decisions()[0].author == "mallory"
        bad = client.post(
            "/api/decisions", content=b"{" * 10, headers={"X-Gpskit-Token": options.token}
        )
        assert bad.status_code == 400
        huge = client.post(
            "/api/decisions", content=b" " * (2 << 20), headers={"X-Gpskit-Token": options.token}
        )
        assert huge.status_code == 413
        page = client.get("/")
        assert "default-src 'self'" in page.headers["content-security-policy"]


def test_off_loopback_every_request_needs_the_token(fresh: Path) -> None:
    """Checked in process (tests listen on loopback only): the guard as a public address
    would run it."""
    from starlette.testclient import TestClient

    options = AppOptions(host="0.0.0.0", port=8765)
    client = TestClient(create_app(Dataset(fresh), options), base_url="http://192.0.2.7:8765")
    assert client.get("/api/photos").status_code == 401
    assert client.get(f"/thumb/{'0' * 16}").status_code == 401
    first = client.get(f"/?token={options.token}")
    assert first.status_code == 200 and "gpskit_token" in first.cookies
    assert client.get("/api/photos").status_code == 200  # the cookie carries it after
    assert options.url().endswith(f"?token={options.token}")


def test_two_clients_deciding_at_once_lose_nothing(fresh: Path) -> None:
    with running(fresh) as (url, options):
        ids = [p["id"] for p in _page(httpx.Client(base_url=url), limit=40)["photos"]]
        failures: list[str] = []

        def decide(who: str) -> None:
            with httpx.Client(base_url=url, headers={"X-Gpskit-Token": options.token}) as client:
                for i in ids:
                    answer = client.post(
                        "/api/decisions",
                        json={
                            "kind": "heading",
                            "photos": [i],
                            "value": {"heading": 10},
                            "author": who,
                        },
                    )
                    if answer.status_code != 201:
                        failures.append(answer.text)

        threads = [threading.Thread(target=decide, args=(who,)) for who in ("ann", "bob")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not failures
    assert len(DecisionStore(fresh).decisions()) == 2 * len(ids)


def test_uploads_are_bounded_without_and_with_a_run(fresh: Path, tmp_path: Path) -> None:
    with running(fresh) as (url, options), httpx.Client(base_url=url) as client:
        headers = {"X-Gpskit-Token": options.token}
        assert client.post("/api/predict", content=b"x", headers=headers).status_code == 404
    run = tmp_path / "run"
    run.mkdir()
    limits = {"max_upload_bytes": 200_000, "max_upload_pixels": 1_000_000}
    with running(fresh, run, **limits) as (url, options):
        client = httpx.Client(base_url=url, headers={"X-Gpskit-Token": options.token})
        assert client.post("/api/predict", content=b"\0" * 300_000).status_code == 413
        assert client.post("/api/predict", content=b"not an image").status_code == 400
        bomb = io.BytesIO()
        Image.new("L", (2000, 2000)).save(bomb, "PNG")  # 4 MP: over the pixel limit
        answer = client.post("/api/predict", content=bomb.getvalue())
        assert answer.status_code == 400 and "pixels" in answer.json()["error"]
        client.close()


# --- in a real browser ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from launch_chromium()


def _open(browser: Any, url: str) -> Any:
    page = browser.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.dialogs = dialogs
    page.goto(url)
    return page


def _ready(page: Any) -> None:
    """Wait for the view to be drawn (a selector: the page's CSP forbids eval, which
    wait_for_function needs)."""
    page.wait_for_selector("body[data-ready='1']", state="attached", timeout=20_000)


@pytest.mark.slow
def test_filter_split_a_group_move_a_position_reload_and_split_honours_it(
    browser: Any, fresh: Path
) -> None:
    with running(fresh) as (url, _):
        page = _open(browser, url + "/#/photos")
        _ready(page)
        page.fill("#author", "ann")
        page.dispatch_event("#author", "change")
        page.select_option("select[data-filter=status]", "rejected")
        page.wait_for_url("**status=rejected**")
        _ready(page)
        rejected = int(
            Dataset(fresh).load_manifest(["status"]).to_pandas().status.eq("rejected").sum()
        )
        assert page.inner_text("#total").startswith(f"{rejected} photos")
        # a duplicate group: take its first copy out
        page.goto(url + "/#/groups")
        _ready(page)
        group = page.locator("[data-group]").first
        copy_id = group.locator("[data-alone]").nth(1).get_attribute("data-alone")
        group.locator(f"[data-alone='{copy_id}']").click()
        page.wait_for_selector("#toast:not([hidden])")
        # move a photo's position on its page, then reload
        accepted = _page(httpx.Client(base_url=url), status="accepted", limit=500)["photos"]
        kept = next(p for p in accepted if p["group"] is None and p["latitude"] is not None)
        moved_to = (round(kept["latitude"] + 0.0001, 7), round(kept["longitude"] - 0.0001, 7))
        page.goto(url + f"/#/photo/{kept['id']}")
        _ready(page)
        before = page.input_value("#lat")
        page.locator("#photo-map").scroll_into_view_if_needed()
        pin = page.locator(".gpskit-pin").bounding_box()
        page.mouse.move(pin["x"] + 9, pin["y"] + 9)
        page.mouse.down()
        page.mouse.move(pin["x"] + 9, pin["y"] - 40, steps=8)  # dragged north on the map
        page.mouse.up()
        assert float(page.input_value("#lat")) > float(before)
        page.fill("#lat", str(moved_to[0]))
        page.fill("#lon", str(moved_to[1]))
        page.click("#save-position")
        page.wait_for_selector("#photo-decisions li")
        page.reload()
        _ready(page)
        assert "position" in page.inner_text("#photo-decisions")
        assert page.inner_text("tr[data-field=gps_source]").endswith("manual")
        assert page.evaluate("window.gpskitErrors") == [] and page.dialogs == []
    report = split(Dataset(fresh), SplitOptions(force=True))
    assert any("dedup" in n for n in report.notes)  # decisions made dedup's output stale
    groups = Dataset(fresh).load_duplicates().to_pandas()
    assert groups.set_index("path").loc[_path(fresh, copy_id), "decided"] == "alone"
    import pandas as pd

    splits = pd.concat(
        pd.read_parquet(fresh / "splits" / f"{n}.parquet") for n in ("train", "val", "test")
    )
    moved = splits[splits.path == kept["path"]]
    assert len(moved) == 1 and moved.latitude.iloc[0] == pytest.approx(moved_to[0])


def _path(dataset: Path, photo_id: str) -> str:
    from gpskit.decisions import photo_id as make_id

    rows = Dataset(dataset).load_manifest(["root", "path"]).to_pandas()
    return next(p for r, p in zip(rows.root, rows.path, strict=True) if make_id(r, p) == photo_id)


@pytest.mark.slow
def test_hostile_names_and_exif_render_as_text(browser: Any, tmp_path: Path) -> None:
    """A file named like HTML, EXIF text with markup, and the team's real samples: shown
    as written, never run."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for sample in sorted(p for p in SHARED.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg"))[
        :12
    ]:
        shutil.copy(sample, photos / sample.name)
    save_photo(
        photo(seed=3), photos / f"{HOSTILE}.jpg", good_exif(make=HOSTILE, model="</title><b>x")
    )
    ingest([photos], tmp_path / "ds", IngestOptions(workers=1))
    with running(tmp_path / "ds") as (url, _):
        page = _open(browser, url + "/#/photos")
        _ready(page)
        assert HOSTILE in page.inner_text("#grid")
        hostile = next(
            p
            for p in _page(httpx.Client(base_url=url), limit=100)["photos"]
            if p["path"] == f"{HOSTILE}.jpg"
        )
        page.goto(url + f"/#/photo/{hostile['id']}")
        _ready(page)
        assert page.inner_text("#photo-title") == f"{HOSTILE}.jpg"
        assert HOSTILE in page.inner_text("tr[data-field=make]")
        for sample in _page(httpx.Client(base_url=url), limit=100)["photos"]:
            page.goto(url + f"/#/photo/{sample['id']}")
            _ready(page)
        page.goto(url + "/#/map")
        _ready(page)
        assert page.evaluate("window.gpskitErrors") == [] and page.dialogs == []
        assert page.evaluate("document.querySelectorAll('script').length") == 2  # gpskit's own


@pytest.mark.slow
def test_twenty_clients_at_once_get_no_errors(fresh: Path) -> None:
    """A bounded load on loopback (the latencies are benchmarks/bench_app.py's)."""
    with running(fresh) as (url, _):
        ids = [p["id"] for p in _page(httpx.Client(base_url=url), limit=100)["photos"]]
        failures: list[str] = []

        def work(seed: int) -> None:
            with httpx.Client(base_url=url, timeout=60) as client:
                for k in range(50):
                    photo_id = ids[(seed * 7 + k) % len(ids)]
                    for path in (f"/thumb/{photo_id}", f"/api/photos?offset={k}&status=accepted"):
                        answer = client.get(path)
                        if answer.status_code != 200:
                            failures.append(f"{path}: {answer.status_code}")

        threads = [threading.Thread(target=work, args=(k,)) for k in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert failures == []


@pytest.mark.slow
def test_predict_places_an_upload_and_names_the_training_photos_it_used(fresh: Path) -> None:
    pytest.importorskip("torch")
    from gpskit.api import Dataset as ApiDataset
    from gpskit.train.options import TrainOptions

    data = ApiDataset(fresh)
    data.split(SplitOptions(force=True))
    options = TrainOptions(
        arch="resnet18", weights="none", epochs=1, image_size=32, batch_size=16, workers=0, knn=4
    )
    run = data.train(options, out=fresh.parent / "run").run_dir
    test = data.splits("test")
    upload = (Path(test.root.iloc[0]) / test.path.iloc[0]).read_bytes()
    with running(fresh, Path(run)) as (url, options_used):
        client = httpx.Client(
            base_url=url, headers={"X-Gpskit-Token": options_used.token}, timeout=120
        )
        answer = client.post("/api/predict", content=upload)
        assert answer.status_code == 200, answer.text
        found = answer.json()
        assert 39.9 < found["latitude"] < 40.0 and found["method"]
        if found["neighbours"]:  # retrieval: the training photos, shown by their ids
            assert all(n["id"] for n in found["neighbours"])
            assert client.get(f"/thumb/{found['neighbours'][0]['id']}").status_code == 200
        client.close()


def test_hostile_requests_are_one_json_line_and_change_nothing(fresh: Path) -> None:
    with running(fresh) as (url, options):
        client = httpx.Client(base_url=url, headers={"X-Gpskit-Token": options.token})
        photo_id = _page(client)["photos"][0]["id"]
        cases = [
            b"[" * 100_000 + b"]" * 100_000,
            b'{"kind": "exclude", "photos": ["%s"], "author": "\\ud800"}' % photo_id.encode(),
            b'{"kind": "exclude", "photos": ["%s"], "author": null}' % photo_id.encode(),
            b'{"kind": "heading", "photos": ["%s"], "author": "a", "value": {"heading": 1%s}}'
            % (photo_id.encode(), b"9" * 400),
            b'{"kind": ["exclude"], "photos": ["%s"], "author": "a"}' % photo_id.encode(),
        ]
        for body in cases:
            answer = client.post("/api/decisions", content=body)
            assert answer.status_code == 400 and "error" in answer.json(), body[:80]
        many = client.post(
            "/api/decisions", json={"kind": "merge", "photos": [photo_id] * 10_001, "author": "a"}
        )
        assert many.status_code == 413
        probe = client.get(f"/thumb/{photo_id}", headers={"Sec-Fetch-Site": "cross-site"})
        assert probe.status_code == 403  # another site cannot test which photos exist
        assert DecisionStore(fresh).decisions() == []
        client.close()


def test_a_group_decision_shows_after_regrouping(fresh: Path) -> None:
    with running(fresh) as (url, options):
        client = httpx.Client(base_url=url, headers={"X-Gpskit-Token": options.token}, timeout=120)
        group = client.get("/api/groups").json()["groups"][0]
        copy = next(m for m in group["members"] if not m["keep"])
        assert client.get("/api/status").json()["groups_current"]
        made = client.post(
            "/api/decisions", json={"kind": "keeper", "photos": [copy["id"]], "author": "ann"}
        )
        assert made.status_code == 201
        assert not client.get("/api/status").json()["groups_current"]
        assert client.post("/api/regroup", json={}).status_code == 200
        members = client.get(f"/api/photos/{copy['id']}").json()["group_members"]
        assert next(m for m in members if m["id"] == copy["id"])["keep"] is True
        assert _page(client, decided="keeper")["total"] == 1
        client.close()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_request_body_is_an_answer_never_a_server_error(
    fresh: Path, data: st.DataObject
) -> None:
    """Generated bodies for the decision and undo routes, in process: a 2xx or 4xx with
    one JSON error, never a 500."""
    from starlette.testclient import TestClient

    options = AppOptions(port=8765)
    client = TestClient(create_app(Dataset(fresh), options), base_url="http://127.0.0.1:8765")
    ids = [p["id"] for p in client.get("/api/photos", params={"limit": 5}).json()["photos"]]
    leaf = (
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats()
        | st.text(max_size=6)
        | st.sampled_from(ids)
    )
    value = st.recursive(
        leaf,
        lambda i: st.lists(i, max_size=3) | st.dictionaries(st.text(max_size=6), i, max_size=3),
        max_leaves=8,
    )
    body = data.draw(st.one_of(value, st.fixed_dictionaries(
        {"kind": st.sampled_from(["exclude", "merge", "position", "heading", "nope"]) | value,
         "photos": st.lists(st.sampled_from(ids) | st.text(max_size=4), max_size=3) | value,
         "author": value, "value": value, "note": value})))  # fmt: skip
    raw = data.draw(st.sampled_from([None, b"", b"\xff\xfe", b"{" * 50]))
    headers = {"X-Gpskit-Token": options.token}
    route = data.draw(st.sampled_from(["/api/decisions", "/api/decisions/abcdef12/undo"]))
    import json as _json

    try:
        content = _json.dumps(body).encode() if raw is None else raw
    except ValueError:
        content = b"{}"
    answer = client.post(route, content=content, headers=headers)
    assert answer.status_code < 500, (body, answer.text)
    if answer.status_code >= 400:
        assert "error" in answer.json()


@pytest.mark.parametrize(
    "token", ['abcdefghijklmnop"><b>x</b>&amp;', "short", "a" * 300, "abcdefghijklmnop q", "é" * 20]
)
def test_a_token_that_could_break_a_url_header_or_page_is_refused(token: str) -> None:
    from gpskit.app import AppOptions

    with pytest.raises(UsageError, match="--token"):
        AppOptions(token=token).validate()
    AppOptions(token="abcdefghijklmnop_-9").validate()


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_token_is_refused_or_safe_in_a_url_a_header_and_a_page(token: str) -> None:
    from gpskit.app import AppOptions

    try:
        AppOptions(token=token).validate()
    except UsageError:
        return
    assert token.isascii() and all(c.isalnum() or c in "-_" for c in token)
