"""One shot from the collect page: what the page measured, checked, and the photo saved
into the dataset's inbox with that measurement in its EXIF, the way a phone writes it.

The page sends the picture (a JPEG from the camera stream, or the file the phone's camera
app made) and, beside it, the position, its accuracy, the heading and the time it
measured when the shutter was pressed. Phone browsers strip location from the files they
upload and many camera apps write no heading, so the page's measurement is what counts:
it replaces the photo's GPS tags; the photo's other tags (make, model, orientation,
capture time) are kept. The picture is written without re-encoding when it is a JPEG.
"""

from __future__ import annotations

import io
import math
import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import piexif

from gpskit import __version__
from gpskit.collect.options import INBOX, SHOT_ID, CollectOptions
from gpskit.decisions.fields import checked_text
from gpskit.errors import InputError, UsageError
from gpskit.exifwrite import PhoneExif

#: Earliest capture time a shot may claim (a phone whose clock was never set says 1970).
EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
#: How far into the future of the laptop's clock a shot's time may be.
CLOCK_SLACK = timedelta(days=1)


@dataclass(frozen=True)
class Shot:
    """What the page measured when the shutter was pressed."""

    shot_id: str
    latitude: float
    longitude: float
    accuracy_m: float
    taken: datetime  # aware, in the phone's own offset
    fix_time: datetime  # aware (UTC): when the position was measured
    heading: float | None = None  # degrees, true north where ``heading_ref`` is "T"
    heading_ref: str = "T"
    altitude: float | None = None
    walker: str = ""

    @classmethod
    def from_dict(cls, data: Any, now: datetime | None = None) -> Shot:
        """A shot from the page's JSON, every field checked (one line per problem)."""
        if not isinstance(data, dict):
            raise InputError("a shot's description must be a JSON object")
        now = now or datetime.now(timezone.utc)
        shot_id = data.get("id")
        if not isinstance(shot_id, str) or not re.fullmatch(SHOT_ID, shot_id):
            raise InputError("a shot needs an id of 8 to 64 letters, digits, '-' or '_'")
        offset = _number(data, "utc_offset_minutes", -840, 840, default=0.0)
        zone = timezone(timedelta(minutes=round(offset)))
        taken = _time(data, "taken_ms", now).astimezone(zone)
        heading = _number(data, "heading", 0, 360, default=None)
        reference = data.get("heading_ref", "T")
        if reference not in ("T", "M"):
            raise InputError("heading_ref must be 'T' (true north) or 'M' (magnetic)")
        try:
            walker = " ".join(checked_text(data.get("walker") or "", "the walker's name").split())
        except UsageError as exc:
            raise InputError(str(exc)) from None
        walker = walker[:100]
        return cls(
            shot_id=shot_id,
            latitude=_required(data, "latitude", -90, 90),
            longitude=_required(data, "longitude", -180, 180),
            accuracy_m=_required(data, "accuracy_m", 0, 1e7),
            taken=taken,
            fix_time=_time(data, "fix_ms", now) if "fix_ms" in data else taken,
            heading=None if heading is None else heading % 360.0,
            heading_ref=reference,
            altitude=_number(data, "altitude", -1000, 10000, default=None),
            walker=walker,
        )

    def exif(self, existing: dict[str, Any] | None) -> bytes:
        """EXIF bytes: the photo's own tags kept, GPS and capture time from the page. Where
        the photo's tags cannot be written again (or would not fit a JPEG's 64 KB
        segment), only its make, model, orientation and capture time are kept."""
        ours = self._tags()
        merged = {k: dict(v) for k, v in (existing or {}).items() if isinstance(v, dict)}
        for ifd in ("0th", "Exif"):
            merged.setdefault(ifd, {})
        merged["GPS"] = ours["GPS"]  # the page's measurement, never the file's
        merged["0th"].update(ours["0th"])
        if piexif.ExifIFD.DateTimeOriginal not in merged["Exif"]:
            merged["Exif"].update(ours["Exif"])
        merged["1st"] = {}
        merged["thumbnail"] = None  # type: ignore[assignment]
        merged.pop("Interop", None)
        try:
            dumped = bytes(piexif.dump(merged))
            if len(dumped) <= MAX_EXIF_BYTES:
                return dumped
        except Exception:  # a tag of the phone's that piexif cannot write again
            pass
        for ifd, tags in _KEPT.items():
            for tag in tags:
                value = merged[ifd].get(tag)
                if isinstance(value, (bytes, int)) and len(str(value)) < 200:
                    ours[ifd][tag] = value
        return bytes(piexif.dump(ours))

    def _tags(self) -> dict[str, Any]:
        phone = PhoneExif(
            latitude=self.latitude,
            longitude=self.longitude,
            altitude=self.altitude,
            heading=self.heading,
            heading_ref=self.heading_ref,
            h_error=self.accuracy_m,
            taken=self.taken,
            gps_time=self.fix_time,
            make=None,
            model=None,
            software=f"gpskit collect {__version__}",
            orientation=None,
        )
        tags = phone.to_dict()
        if self.walker:
            tags["0th"][piexif.ImageIFD.Artist] = self.walker.encode()
        return tags

    def check_capture_time(self, existing: dict[str, Any] | None) -> None:
        """Refuse a photo whose own capture time is not the moment the page measured (a
        photo chosen from the gallery would get today's position)."""
        written = (existing or {}).get("Exif", {}).get(piexif.ExifIFD.DateTimeOriginal)
        try:
            own = datetime.strptime(written.decode("ascii").strip("\0 "), "%Y:%m:%d %H:%M:%S")
        except (AttributeError, UnicodeDecodeError, ValueError):
            return  # no readable capture time: the page's stands
        local = self.taken.replace(tzinfo=None)
        if abs((own - local).total_seconds()) > MAX_CAPTURE_GAP_S:
            raise InputError(
                f"this photo was taken at {own:%Y-%m-%d %H:%M}, not when the page measured "
                f"the position ({local:%Y-%m-%d %H:%M})",
                hint="take a new photo: the page writes the position it measures now",
            )


#: Largest EXIF block written (a JPEG segment holds 64 KB with its header).
MAX_EXIF_BYTES = 65_000
#: A photo's own capture time may differ from the page's by this much (camera app lag,
#: phone clocks) (s).
MAX_CAPTURE_GAP_S = 600
#: The photo's own tags kept when the rest cannot be written again.
_KEPT = {
    "0th": (piexif.ImageIFD.Make, piexif.ImageIFD.Model, piexif.ImageIFD.Orientation),
    "Exif": (piexif.ExifIFD.DateTimeOriginal, piexif.ExifIFD.OffsetTimeOriginal),
}


def _required(data: dict[str, Any], name: str, low: float, high: float) -> float:
    value = _number(data, name, low, high, default=None)
    if value is None:
        raise InputError(f"a shot needs its {name} (the page measures it)")
    return float(value)


def _number(data: dict[str, Any], name: str, low: float, high: float, default: Any) -> Any:
    value = data.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"a shot's {name} must be a number")
    try:
        number = float(value)
    except OverflowError:  # an integer of hundreds of digits
        number = math.inf
    if not math.isfinite(number) or not low <= number <= high:
        raise InputError(f"a shot's {name} must be between {low:g} and {high:g}")
    return number


def _time(data: dict[str, Any], name: str, now: datetime) -> datetime:
    millis = _required(data, name, 0, 1e14)
    when = datetime.fromtimestamp(millis / 1000, timezone.utc)
    if when < EARLIEST or when > now + CLOCK_SLACK:
        raise InputError(
            f"a shot's {name} is {when:%Y-%m-%d %H:%M} UTC: the phone's clock is wrong",
            hint="set the phone's date and time automatically",
        )
    return when


def shot_path(root: Path, shot: Shot) -> Path:
    """Where a shot is kept: the inbox, a folder a day (UTC), named by its id."""
    day = shot.taken.astimezone(timezone.utc).strftime("%Y-%m-%d")
    return root / INBOX / day / f"{shot.shot_id}.jpg"


def find_shot(root: Path, shot_id: str) -> Path | None:
    """The file of a shot already received (any day), or None."""
    inbox = root / INBOX
    if not re.fullmatch(SHOT_ID, shot_id) or not inbox.is_dir():
        return None
    for day in sorted(inbox.iterdir()):
        candidate = day / f"{shot_id}.jpg"
        if candidate.is_file():
            return candidate
    return None


def photo_bytes(shot: Shot, data: bytes, options: CollectOptions) -> bytes:
    """The photo as saved: a JPEG with the shot's EXIF (a JPEG's pixels untouched where
    its segments allow; otherwise decoded under the upload limits and saved as JPEG)."""
    from gpskit.app.images import decode_upload

    image = decode_upload(data, options.max_shot_bytes, options.max_shot_pixels)
    existing = None
    if data[:3] == b"\xff\xd8\xff":
        try:
            existing = piexif.load(data)
        except Exception:  # unreadable tags: the page's measurement stands alone
            existing = None
    shot.check_capture_time(existing)
    exif = shot.exif(existing)
    if existing is not None:
        out = io.BytesIO()
        try:
            piexif.insert(exif, _without_exif(data), out)
            return out.getvalue()
        except Exception:  # segments piexif cannot walk: the pixels are saved again
            pass
    out = io.BytesIO()
    try:
        image.convert("RGB").save(out, "JPEG", quality=92, exif=exif)
    except (OSError, ValueError) as exc:
        raise InputError(f"the photo cannot be saved as JPEG ({type(exc).__name__})") from None
    return out.getvalue()


def _without_exif(data: bytes) -> bytes:
    """A JPEG with its EXIF segment removed (piexif.insert adds ours)."""
    out = io.BytesIO()
    try:
        piexif.remove(data, out)
    except Exception:
        return data
    return out.getvalue()


def save_shot(target: Path, data: bytes) -> bool:
    """Write the photo at ``target`` unless a file is there already (False): the same
    shot sent twice is kept once, whichever request wins."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.with_name(f".{target.name}.{os.getpid()}.{id(data)}.part")
    staged.write_bytes(data)
    try:
        os.link(staged, target)  # fails if the shot is there: never replaces
    except FileExistsError:
        return False
    finally:
        staged.unlink(missing_ok=True)
    return True
