"""``coverage/map.html``: the coverage as an interactive map, in one self-contained file.

Leaflet (BSD-2, vendored in ``gpskit/_vendor/leaflet``) and every data layer are inlined:
the region, the photos as points coloured by compass sector (a thumbnail and the file
name on click), the empty grid cells and spots missing headings, and the walking plan
with its numbered stops. The file works offline; OpenStreetMap tiles are added behind the
data only when the browser can reach them.

JavaScript errors are collected into ``#gpskit-errors`` and the page marks
``<body data-ready="1" data-photos="N">`` once drawn, so a headless browser can check it.
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from shapely.geometry import mapping

from gpskit.geo import SECTORS
from gpskit.regions import Region

VENDOR = Path(__file__).resolve().parent / "_vendor" / "leaflet"
#: Photos that get a thumbnail in their popup (each ~3 KB of the file); the rest show
#: their name only.
MAX_THUMBNAILS = 1500
#: Photos drawn at most (an even sample beyond it; ~150 bytes each): a browser stays quick.
MAX_POINTS = 20_000
THUMB_SIDE = 128
#: Compass-sector colours, as in the PNG map (N red, NE orange, ... NW pink).
SECTOR_HEX = (
    "#e41a1c",
    "#ff7f00",
    "#c8b400",
    "#4daf4a",
    "#00aaaa",
    "#377eb8",
    "#984ea3",
    "#f781bf",
)


def thumbnail_uri(path: str) -> str | None:
    """A small JPEG of the photo as a data: URI (None when it cannot be decoded now)."""
    from gpskit.imaging import decode_oriented

    try:
        image = decode_oriented(path, max_side=THUMB_SIDE)
    except Exception:  # moved or broken since ingest: the point stays, without a picture
        return None
    image.thumbnail((THUMB_SIDE, THUMB_SIDE))
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=70)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def photo_points(table: pd.DataFrame, thumbnails: int = MAX_THUMBNAILS) -> list[dict[str, Any]]:
    """The kept photos inside the region as map points (thumbnails for the first N)."""
    from gpskit.storage import join

    shown = table[table.keep & table.latitude.notna() & table.longitude.notna()]
    if len(shown) > MAX_POINTS:  # an even sample, the same on every run
        shown = shown.iloc[np.linspace(0, len(shown) - 1, MAX_POINTS).round().astype(int)]
    points = []
    row: dict[Any, Any]
    for i, row in enumerate(shown.to_dict("records")):
        sector = row["heading_sector"] if isinstance(row["heading_sector"], str) else None
        where = join(str(row["root"]), str(row["path"]))
        points.append(
            {
                "lat": round(float(row["latitude"]), 7),
                "lon": round(float(row["longitude"]), 7),
                "sector": sector,
                "colour": SECTOR_HEX[SECTORS.index(sector)] if sector else "#777777",
                "name": str(row["path"]),
                "spot": int(row["spot_id"]),
                "inside": bool(row["inside_region"]),
                "thumb": thumbnail_uri(where) if i < thumbnails else None,
            }
        )
    return points


def _leaflet() -> tuple[str, str]:
    script = (VENDOR / "leaflet.js").read_text(encoding="utf-8")
    style = (VENDOR / "leaflet.css").read_text(encoding="utf-8")
    # the CSS names icon images we do not ship (circle markers need none): no requests
    style = re.sub(r"url\([^)]*\)", "none", style)
    return script, style


def _json(value: Any) -> str:
    """JSON safe inside a <script> element."""
    return json.dumps(value, separators=(",", ":")).replace("</", "<\\/")


def map_html(
    region: Region,
    points: list[dict[str, Any]],
    gaps: dict[str, Any],
    plan: dict[str, Any],
    photos_total: int | None = None,
) -> str:
    """The whole page (see the module docstring); ``photos_total``: how many photos the
    points were sampled from, said on the map when more than are drawn."""
    script, style = _leaflet()
    data = {
        "region": {"type": "Feature", "properties": {}, "geometry": mapping(region.geometry)},
        "photos": points,
        "gaps": gaps,
        "plan": plan,
        "sectors": dict(zip(SECTORS, SECTOR_HEX, strict=True)),
        "photos_total": photos_total if photos_total is not None else len(points),
    }
    title = html.escape(f"gpskit coverage: {region.name}")
    return _PAGE.format(title=title, style=style, script=script, data=_json(data), app=_APP)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{style}
html, body, #map {{ height: 100%; margin: 0; }}
.gpskit-legend {{ background: white; padding: 6px 8px; font: 12px sans-serif; line-height: 18px; }}
.gpskit-legend i {{ display: inline-block; width: 10px; height: 10px; border-radius: 5px;
  margin-right: 4px; }}
.gpskit-popup img {{ display: block; max-width: 128px; margin-top: 4px; }}
</style>
<script>
window.gpskitErrors = [];
window.addEventListener("error", function (e) {{ window.gpskitErrors.push(String(e.message)); }});
window.addEventListener("unhandledrejection", function (e) {{
  window.gpskitErrors.push("unhandled rejection: " + String(e.reason)); }});
window.addEventListener("load", function () {{
  document.getElementById("gpskit-errors").textContent = window.gpskitErrors.join("\\n");
  document.body.dataset.errors = String(window.gpskitErrors.length);
}});
</script>
<script>{script}</script>
</head><body>
<div id="map"></div>
<pre id="gpskit-errors" hidden></pre>
<script id="gpskit-data" type="application/json">{data}</script>
<script>{app}</script>
</body></html>
"""

_APP = r"""
(function () {
  var data = JSON.parse(document.getElementById("gpskit-data").textContent);
  var map = L.map("map", { preferCanvas: true });
  var region = L.geoJSON(data.region, {
    style: { color: "#333", weight: 2, fill: false }
  }).addTo(map);
  var photos = L.layerGroup();
  data.photos.forEach(function (p) {
    var marker = L.circleMarker([p.lat, p.lon], {
      radius: 4, color: p.colour, fillColor: p.colour, fillOpacity: 0.8, weight: 1
    });
    var box = document.createElement("div");
    box.className = "gpskit-popup";
    box.appendChild(document.createTextNode(
      p.name + " (" + (p.sector || "no heading") + ", spot " + p.spot + ")"));
    if (p.thumb) {
      var img = document.createElement("img");
      img.src = p.thumb;
      img.alt = p.name;
      box.appendChild(img);
    }
    marker.bindPopup(box);
    photos.addLayer(marker);
  });
  photos.addTo(map);
  var gaps = L.geoJSON(data.gaps, {
    style: { color: "#d00", weight: 1, fillColor: "#f88", fillOpacity: 0.35 },
    pointToLayer: function (f, latlng) {
      return L.circleMarker(latlng, { radius: 7, color: "#d00", weight: 2, fill: false });
    },
    onEachFeature: function (f, layer) {
      var p = f.properties;
      layer.bindPopup(p.gap === "empty_cell"
        ? "empty cell " + p.cell + ": " + p.photos + " of " + p.needed + " photos"
        : "spot " + p.spot_id + ": " + p.todo);
    }
  }).addTo(map);
  var plan = L.geoJSON(data.plan, {
    style: { color: "#06c", weight: 3, dashArray: "6 4" },
    pointToLayer: function (f, latlng) {
      return L.marker(latlng, { icon: L.divIcon({
        className: "", html: "<b style='color:#06c;font:bold 12px sans-serif'>" +
          f.properties.order + "</b>" }) });
    },
    onEachFeature: function (f, layer) {
      if (f.properties.order !== undefined) {
        layer.bindPopup(f.properties.order + ": " + f.properties.todo);
      }
    }
  }).addTo(map);
  map.fitBounds(region.getBounds(), { padding: [20, 20] });
  L.control.layers(null, {
    "photos (by heading)": photos, "gaps": gaps, "walking plan": plan, "region": region
  }, { collapsed: false }).addTo(map);
  var legend = L.control({ position: "bottomleft" });
  legend.onAdd = function () {
    var div = L.DomUtil.create("div", "gpskit-legend");
    Object.keys(data.sectors).forEach(function (s) {
      div.innerHTML += "<i style='background:" + data.sectors[s] + "'></i>" + s + " ";
    });
    if (data.photos_total > data.photos.length) {
      div.appendChild(document.createElement("br"));
      div.appendChild(document.createTextNode("showing " + data.photos.length + " of " +
        data.photos_total + " photos (an even sample)"));
    }
    return div;
  };
  legend.addTo(map);
  // background tiles only when they can be reached: the data layers never need them
  if (window.fetch && navigator.onLine !== false) {
    fetch("https://tile.openstreetmap.org/0/0/0.png", { mode: "no-cors" }).then(function () {
      L.tileLayer("https://tile.openstreetmap.org/{z}/{x}/{y}.png", {
        maxZoom: 19, attribution: "&copy; OpenStreetMap contributors"
      }).addTo(map).bringToBack();
    }).catch(function () { /* offline: the data layers alone */ });
  }
  document.body.dataset.photos = String(data.photos.length);
  document.body.dataset.ready = "1";
})();
"""
