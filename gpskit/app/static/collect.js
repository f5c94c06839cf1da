// gpskit collect: the phone's page. Live position and compass, the region's coverage for
// the whole team (server-sent events), the camera, and a queue of shots kept in IndexedDB
// until the laptop has them (each shot has an id: sent twice, kept once).
(function () {
  "use strict";
  var TOKEN = document.querySelector('meta[name="gpskit-token"]').content;
  var SECTORS = ["N", "NE", "E", "SE", "S", "SW", "W", "NW"];
  var NEAR_SPOT_M = 15;      // a spot is "here" within this distance
  var STALE_FIX_MS = 15000;  // a fix older than this is not used for a shot
  var RETRY_MS = 5000;

  var state = null;          // the server's coverage state
  var fix = null;            // the latest position
  var magnetic = null;       // the compass heading (degrees from magnetic north)
  var map, me, accuracy, layers = {};
  var sending = false;
  var stream = null;

  function $(id) { return document.getElementById(id); }

  function toast(text, error) {
    var node = $("toast");
    node.textContent = text;
    node.className = error ? "error" : "";
    node.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { node.hidden = true; }, error ? 8000 : 3000);
  }

  function pill(id, text, kind) {
    var node = $(id);
    node.textContent = text;
    node.className = "pill " + (kind || "");
  }

  // --- geometry ---------------------------------------------------------------------------

  function metres(aLat, aLon, bLat, bLon) {
    var r = 6371008.8, p = Math.PI / 180;
    var dLat = (bLat - aLat) * p, dLon = (bLon - aLon) * p;
    var h = Math.sin(dLat / 2) * Math.sin(dLat / 2) +
      Math.cos(aLat * p) * Math.cos(bLat * p) * Math.sin(dLon / 2) * Math.sin(dLon / 2);
    return 2 * r * Math.asin(Math.min(1, Math.sqrt(h)));
  }

  function trueHeading() {
    if (magnetic === null) return null;
    var declination = state && typeof state.declination === "number" ? state.declination : 0;
    return ((magnetic + declination) % 360 + 360) % 360;
  }

  function sectorOf(heading) { return Math.floor(((heading + 22.5) % 360) / 45); }

  // --- the map ----------------------------------------------------------------------------

  function setUpMap() {
    map = L.map("map", { preferCanvas: true, zoomControl: false });
    L.tileLayer("https://tile.openstreetmap.org/{z}/{x}/{y}.png",
      { maxZoom: 20, attribution: "© OpenStreetMap" }).addTo(map);
    ["region", "cells", "spots", "stops", "recent"].forEach(function (name) {
      layers[name] = L.layerGroup().addTo(map);
    });
    map.setView([0, 0], 2);
  }

  function draw() {
    if (!state) return;
    layers.region.clearLayers();
    var outline = L.geoJSON(state.region, { style: { color: "#1565c0", weight: 2, fill: false } });
    outline.addTo(layers.region);
    if (!draw.fitted) { map.fitBounds(outline.getBounds()); draw.fitted = true; }
    layers.cells.clearLayers();
    state.cells.covered.forEach(function (b) {
      L.rectangle([[b[0], b[1]], [b[2], b[3]]], { color: "#2e7d32", weight: 0, fillOpacity: 0.35 }).addTo(layers.cells);
    });
    state.cells.empty.forEach(function (b) {
      L.rectangle([[b[0], b[1]], [b[2], b[3]]], { color: "#ef6c00", weight: 1, fillOpacity: 0.05 }).addTo(layers.cells);
    });
    layers.spots.clearLayers();
    state.spots.forEach(function (s) {
      L.circleMarker([s.lat, s.lon], { radius: 5, color: s.missing.length ? "#ef6c00" : "#2e7d32", weight: 2 })
        .bindTooltip(s.missing.length ? "missing " + s.missing.map(function (i) { return SECTORS[i]; }).join(" ") : "complete")
        .addTo(layers.spots);
    });
    layers.recent.clearLayers();
    state.recent.forEach(function (r) {
      L.circleMarker([r.lat, r.lon], { radius: 3, color: r.status === "accepted" ? "#1b5e20" : "#b71c1c" }).addTo(layers.recent);
    });
    var f = state.figures;
    $("figures").textContent = f.covered_cells + " of " + f.cells + " cells covered (" + f.covered_pct +
      " %), " + f.complete_spots + " of " + f.spots + " spots complete";
    document.body.setAttribute("data-version", String(state.version));
    showHeading();
    guide();
  }

  function refresh() {
    return fetch("/api/collect/state", { credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (s) { state = s; draw(); document.body.setAttribute("data-ready", "1"); })
      .catch(function () { pill("net", "offline", "bad"); });
  }

  // --- where to go, which way to face ------------------------------------------------------

  function nearestSpot() {
    if (!state || !fix) return null;
    var best = null;
    state.spots.forEach(function (s) {
      var d = metres(fix.lat, fix.lon, s.lat, s.lon);
      if (d <= NEAR_SPOT_M && (!best || d < best.d)) best = { spot: s, d: d };
    });
    return best;
  }

  function drawRose(have, missing, facing) {
    var svg = $("rose");
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    var ns = "http://www.w3.org/2000/svg";
    for (var i = 0; i < 8; i++) {
      var a0 = (i * 45 - 22.5 - 90) * Math.PI / 180, a1 = (i * 45 + 22.5 - 90) * Math.PI / 180;
      var path = document.createElementNS(ns, "path");
      path.setAttribute("d", "M0,0 L" + 45 * Math.cos(a0) + "," + 45 * Math.sin(a0) +
        " A45,45 0 0,1 " + 45 * Math.cos(a1) + "," + 45 * Math.sin(a1) + " Z");
      var kind = have.indexOf(i) >= 0 ? "have" : (missing.indexOf(i) >= 0 ? "missing" : "none");
      path.setAttribute("class", "sector " + kind + (facing === i ? " facing" : ""));
      path.setAttribute("data-sector", SECTORS[i]);
      svg.appendChild(path);
      var label = document.createElementNS(ns, "text");
      var mid = (i * 45 - 90) * Math.PI / 180;
      label.setAttribute("x", 33 * Math.cos(mid)); label.setAttribute("y", 33 * Math.sin(mid) + 3);
      label.setAttribute("text-anchor", "middle"); label.setAttribute("font-size", "8");
      label.textContent = SECTORS[i];
      svg.appendChild(label);
    }
  }

  function guide() {
    var heading = trueHeading();
    var facing = heading === null ? -1 : sectorOf(heading);
    var here = nearestSpot();
    if (here) {
      var s = here.spot;
      drawRose(s.have, s.missing, facing);
      $("spot-text").textContent = s.missing.length
        ? "at a spot (" + Math.round(here.d) + " m): turn to " + s.missing.map(function (i) { return SECTORS[i]; }).join(" ")
        : "this spot is complete";
      document.body.setAttribute("data-facing-missing", s.missing.indexOf(facing) >= 0 ? "1" : "0");
    } else {
      drawRose([], [0, 1, 2, 3, 4, 5, 6, 7], facing);
      $("spot-text").textContent = "a new spot: shoot all 8 headings";
      document.body.setAttribute("data-facing-missing", facing >= 0 ? "1" : "0");
    }
    var next = nextStops(3);
    $("next-text").textContent = next.length ? "next: " + next.map(function (n) {
      return Math.round(n.d) + " m, " + n.stop.todo;
    }).join(" · ") : "";
    layers.stops.clearLayers();
    next.forEach(function (n, k) {
      L.circleMarker([n.stop.lat, n.stop.lon], { radius: 6, color: "#6a1b9a" }).bindTooltip(String(k + 1), { permanent: true })
        .addTo(layers.stops);
    });
  }

  function nextStops(count) {
    if (!state || !fix) return [];
    return state.stops.map(function (stop) { return { stop: stop, d: metres(fix.lat, fix.lon, stop.lat, stop.lon) }; })
      .sort(function (a, b) { return a.d - b.d; }).slice(0, count);
  }

  // --- sensors ----------------------------------------------------------------------------

  function watchPosition() {
    if (!navigator.geolocation) { pill("fix", "no position on this browser", "bad"); return; }
    navigator.geolocation.watchPosition(function (p) {
      fix = { lat: p.coords.latitude, lon: p.coords.longitude, accuracy: p.coords.accuracy,
              altitude: p.coords.altitude, time: p.timestamp || Date.now() };
      pill("fix", "±" + Math.round(fix.accuracy) + " m", fix.accuracy <= 20 ? "good" : "warn");
      if (!me) {
        me = L.circleMarker([fix.lat, fix.lon], { radius: 7, color: "#0d47a1", fillOpacity: 1 }).addTo(map);
        accuracy = L.circle([fix.lat, fix.lon], { radius: fix.accuracy, color: "#1976d2", weight: 1 }).addTo(map);
      }
      me.setLatLng([fix.lat, fix.lon]);
      accuracy.setLatLng([fix.lat, fix.lon]).setRadius(fix.accuracy);
      document.body.setAttribute("data-fix", "1");
      updateShutter();
      guide();
    }, function (e) {
      pill("fix", "position: " + (e.code === 1 ? "not allowed" : "unavailable"), "bad");
    }, { enableHighAccuracy: true, maximumAge: 0, timeout: 30000 });
  }

  function onOrientation(e) {
    var value = null;
    if (typeof e.webkitCompassHeading === "number") value = e.webkitCompassHeading;  // iOS: magnetic
    else if (e.absolute && typeof e.alpha === "number") value = (360 - e.alpha) % 360;
    if (value === null) return;
    magnetic = value;
    showHeading();
    guide();
  }

  function showHeading() {
    var heading = trueHeading();
    if (heading === null) return;
    var ref = state && typeof state.declination === "number" ? "true" : "magnetic";
    pill("compass", Math.round(heading) % 360 + "° " + SECTORS[sectorOf(heading)] + " (" + ref + ")", "good");
    document.body.setAttribute("data-heading", String(Math.round(heading) % 360));
  }

  function watchCompass() {
    if ("ondeviceorientationabsolute" in window) {
      window.addEventListener("deviceorientationabsolute", onOrientation);
    }
    window.addEventListener("deviceorientation", onOrientation);
  }

  function startCamera() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) { useFileInput(); return; }
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment", width: { ideal: 4032 } }, audio: false })
      .then(function (s) { stream = s; $("video").srcObject = s; updateShutter(); })
      .catch(function () { useFileInput(); });
  }

  function useFileInput() {
    $("video").hidden = true;
    $("file-label").hidden = false;
    $("shutter").hidden = true;
  }

  function updateShutter() { $("shutter").disabled = !(stream && fix); }

  // --- shots ------------------------------------------------------------------------------

  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function measurement() {
    if (!fix) { toast("no position yet: wait for it", true); return null; }
    var now = Date.now();
    if (now - fix.time > STALE_FIX_MS) { toast("the position is old: wait for a fresh one", true); return null; }
    var heading = trueHeading();
    var m = { id: newId(), latitude: fix.lat, longitude: fix.lon, accuracy_m: fix.accuracy,
              fix_ms: fix.time, taken_ms: now, utc_offset_minutes: -new Date().getTimezoneOffset(),
              walker: $("walker").value || "" };
    if (typeof fix.altitude === "number") m.altitude = fix.altitude;
    if (heading !== null) {
      m.heading = heading;
      m.heading_ref = state && typeof state.declination === "number" ? "T" : "M";
    }
    return m;
  }

  function shoot() {
    var m = measurement();
    if (!m) return;
    var video = $("video");
    var canvas = document.createElement("canvas");
    canvas.width = video.videoWidth; canvas.height = video.videoHeight;
    canvas.getContext("2d").drawImage(video, 0, 0);
    canvas.toBlob(function (blob) { keep(m, blob); }, "image/jpeg", 0.92);
  }

  function shootFile(e) {
    var file = e.target.files && e.target.files[0];
    var m = measurement();
    if (file && m) keep(m, file);
    e.target.value = "";
  }

  // IndexedDB: the queue of shots not yet on the laptop
  function db() {
    if (db.opened) return db.opened;
    db.opened = new Promise(function (resolve, reject) {
      var request = indexedDB.open("gpskit-collect", 1);
      request.onupgradeneeded = function () { request.result.createObjectStore("shots", { keyPath: "id" }); };
      request.onsuccess = function () { resolve(request.result); };
      request.onerror = function () { reject(request.error); };
    });
    return db.opened;
  }

  function store(mode, work) {
    return db().then(function (d) {
      return new Promise(function (resolve, reject) {
        var tx = d.transaction("shots", mode);
        var result = work(tx.objectStore("shots"));
        tx.oncomplete = function () { resolve(result && result.result); };
        tx.onerror = function () { reject(tx.error); };
      });
    });
  }

  function keep(m, blob) {
    store("readwrite", function (s) { return s.put({ id: m.id, meta: m, blob: blob, queued: Date.now() }); })
      .then(function () { toast("shot taken"); countQueue(); send(); })
      .catch(function () { toast("could not keep the shot on this phone", true); });
  }

  function countQueue() {
    return store("readonly", function (s) { return s.getAll(); }).then(function (shots) {
      var failed = shots.filter(function (shot) { return shot.failed; }).length;
      var n = shots.length - failed;
      pill("queue", "queue: " + n + (failed ? " (" + failed + " kept aside)" : ""), n || failed ? "warn" : "");
      document.body.setAttribute("data-queue", String(n));
      return n;
    });
  }

  function send() {
    if (sending) return;
    sending = true;
    store("readonly", function (s) { return s.getAll(); }).then(function (shots) {
      shots = shots.filter(function (shot) { return !shot.failed; });
      shots.sort(function (a, b) { return a.queued - b.queued; });
      // one at a time, oldest first; a shot that fails waits for the next round, the
      // others still go (one the laptop cannot take never holds up the rest)
      return shots.reduce(function (chain, shot) { return chain.then(function () { return upload(shot); }); },
        Promise.resolve(true));
    }).catch(function () {}).then(function () { sending = false; countQueue(); });
  }

  function upload(shot) {
    return fetch("/api/collect/shots", {
      method: "POST", credentials: "same-origin", body: shot.blob,
      headers: { "X-Gpskit-Token": TOKEN, "X-Gpskit-Shot": encodeURIComponent(JSON.stringify(shot.meta)),
                 "Content-Type": shot.blob.type || "image/jpeg" }
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) {
        if (r.status === 200 || r.status === 201) {
          if (body.status === "rejected") toast(body.message || "not kept: take it again", true);
          else toast(body.repeated ? "already on the laptop" : "kept");
          return forget(shot.id).then(function () { pill("net", "online", ""); return true; });
        }
        if (r.status === 503 || r.status === 507 || r.status === 429) { pill("net", "laptop busy", "warn"); return false; }
        if (r.status >= 500) {  // a gpskit bug: tried five times, then kept aside on the phone
          shot.tries = (shot.tries || 0) + 1;
          shot.failed = shot.tries >= 5;
          if (shot.failed) toast("the laptop could not take a shot; it stays on this phone", true);
          return store("readwrite", function (s) { return s.put(shot); }).then(function () { return false; });
        }
        toast("refused: " + (body.error || ("HTTP " + r.status)), true);
        return forget(shot.id).then(function () { return true; });  // a bad shot is not sent again
      });
    }, function () { pill("net", "offline", "bad"); return false; });
  }

  function forget(id) { return store("readwrite", function (s) { return s.delete(id); }); }

  // --- the team, live -----------------------------------------------------------------------

  function listen() {
    var source = new EventSource("/api/collect/events");
    source.addEventListener("shot", function () { refresh(); });
    source.onopen = function () { pill("net", "online", ""); send(); refresh(); };
    source.onerror = function () { pill("net", "reconnecting", "warn"); };
  }

  function enable() {
    var asks = [];
    if (window.DeviceOrientationEvent && typeof DeviceOrientationEvent.requestPermission === "function") {
      asks.push(DeviceOrientationEvent.requestPermission().catch(function () { return "denied"; }));
    }
    Promise.all(asks).then(function () { $("enable").hidden = true; watchCompass(); startCamera(); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setUpMap();
    $("walker").value = localStorage.getItem("gpskit-walker") || "";
    $("walker").addEventListener("change", function () { localStorage.setItem("gpskit-walker", $("walker").value); });
    $("shutter").addEventListener("click", shoot);
    $("file").addEventListener("change", shootFile);
    window.addEventListener("online", send);
    setInterval(send, RETRY_MS);
    refresh();
    listen();
    watchPosition();
    countQueue();
    if (window.DeviceOrientationEvent && typeof DeviceOrientationEvent.requestPermission === "function") {
      $("enable").hidden = false;  // iOS asks for the compass only after a tap
      $("enable").addEventListener("click", enable);
    } else {
      watchCompass();
      startCamera();
    }
  });
})();
