// gpskit app: one page, views by the URL's hash. Every piece of data reaches the DOM as
// text (textContent, setAttribute), never as HTML: a file named <script> stays a name.
"use strict";
(function () {
  var TOKEN = document.querySelector('meta[name="gpskit-token"]').content;
  var PREDICT = document.querySelector('meta[name="gpskit-predict"]').content === "1";
  var view = document.getElementById("view");
  var authorBox = document.getElementById("author");
  var errors = (window.gpskitErrors = []);
  window.addEventListener("error", function (e) { errors.push(String(e.message)); });
  window.addEventListener("unhandledrejection", function (e) { errors.push(String(e.reason)); });

  authorBox.value = localStorage.getItem("gpskit-author") || "";
  authorBox.addEventListener("change", function () {
    localStorage.setItem("gpskit-author", authorBox.value.trim());
  });
  document.getElementById("dataset-name").textContent =
    document.querySelector('meta[name="gpskit-dataset"]').content;
  if (PREDICT) document.getElementById("nav-predict").hidden = false;

  // --- helpers ---------------------------------------------------------------------------
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "on") Object.keys(attrs.on).forEach(function (e) { node.addEventListener(e, attrs.on[e]); });
      else if (attrs[k] !== null && attrs[k] !== undefined) node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return node;
  }
  function toast(text, bad) {
    var box = document.getElementById("toast");
    box.textContent = text; box.className = bad ? "error" : ""; box.hidden = false;
    clearTimeout(toast.timer); toast.timer = setTimeout(function () { box.hidden = true; }, 3500);
  }
  function getJSON(url) {
    return fetch(url, { credentials: "same-origin" }).then(function (r) {
      return r.json().then(function (body) { if (!r.ok) throw new Error(body.error || r.statusText); return body; });
    });
  }
  function send(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-Gpskit-Token": TOKEN },
      body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().then(function (b) { if (!r.ok) throw new Error(b.error || r.statusText); return b; });
    });
  }
  function author() {
    var name = authorBox.value.trim();
    if (!name) { authorBox.focus(); throw new Error("type your name first (top right): decisions say who made them"); }
    localStorage.setItem("gpskit-author", name);
    return name;
  }
  function decide(kind, photos, value) {
    var who;
    try { who = author(); } catch (e) { toast(e.message, true); return Promise.reject(e); }
    var noteBox = document.getElementById("note");
    var note = noteBox && noteBox.value.trim() ? noteBox.value.trim() : null;
    return send("/api/decisions", { kind: kind, photos: photos, value: value || {}, author: who, note: note })
      .then(function (d) { toast(kind + " recorded"); return d; },
            function (e) { toast(e.message, true); throw e; });
  }
  function badge(text, cls) { return el("span", { "class": "badge " + (cls || ""), text: text }); }
  function fmt(v) { return v === null || v === undefined ? "" : (typeof v === "number" ? String(Math.round(v * 1e7) / 1e7) : String(v)); }
  function query() {
    var hash = location.hash.slice(1), at = hash.indexOf("?");
    var params = new URLSearchParams(at >= 0 ? hash.slice(at + 1) : "");
    return { path: at >= 0 ? hash.slice(0, at) : hash, params: params };
  }
  function card(p, extra) {
    var caption = el("div", { "class": "caption" }, [
      el("a", { href: "#/photo/" + encodeURIComponent(p.id), text: p.path, "data-testid": "photo-link" }),
      el("div", {}, [badge(p.status, p.status)].concat(
        (p.decided || []).map(function (d) { return badge(d, "decided"); }),
        (p.reasons || []).map(function (r) { return badge(r); })))
    ].concat(extra || []));
    return el("div", { "class": "card" + (p.keep === true && p.group ? " keeper" : ""), "data-id": p.id }, [
      el("a", { href: "#/photo/" + encodeURIComponent(p.id) }, [
        el("img", { src: "/thumb/" + encodeURIComponent(p.id), loading: "lazy", alt: p.path })
      ]), caption
    ]);
  }
  function leafletMap(node, layers) {
    var map = L.map(node, { preferCanvas: true });
    L.tileLayer("https://tile.openstreetmap.org/{z}/{x}/{y}.png", { maxZoom: 20, attribution: "© OpenStreetMap" }).addTo(map);
    return map;
  }

  // --- photos ----------------------------------------------------------------------------
  var FILTERS = ["status", "reason", "warning", "decided", "split", "group", "cell", "spot", "q"];
  function photosView(params) {
    var bar = el("div", { "class": "filters" });
    var grid = el("div", { "class": "grid", id: "grid" });
    var total = el("span", { id: "total", "class": "muted" });
    var more = el("button", { id: "more", text: "more" });
    view.replaceChildren(bar, el("p", {}, [total]), grid, el("p", {}, [more]));
    getJSON("/api/facets").then(function (facets) {
      FILTERS.forEach(function (name) {
        var input;
        var choices = facets[name];
        if (choices && typeof choices === "object") {
          input = el("select", { name: name, "data-filter": name }, [el("option", { value: "", text: "any" })]);
          Object.keys(choices).forEach(function (k) {
            input.appendChild(el("option", { value: k, text: k + " (" + choices[k] + ")" }));
          });
        } else {
          input = el("input", { name: name, "data-filter": name, size: name === "q" ? 16 : 6,
                                placeholder: name === "q" ? "path contains" : "" });
        }
        input.value = params.get(name) || "";
        input.addEventListener("change", function () {
          var next = new URLSearchParams();
          bar.querySelectorAll("[data-filter]").forEach(function (f) { if (f.value) next.set(f.name, f.value); });
          location.hash = "#/photos?" + next.toString();
        });
        bar.appendChild(el("label", {}, [name === "q" ? "search" : name, input]));
      });
    });
    var offset = 0;
    function load() {
      var q = new URLSearchParams(params); q.set("offset", offset); q.set("limit", 60);
      return getJSON("/api/photos?" + q.toString()).then(function (page) {
        page.photos.forEach(function (p) { grid.appendChild(card(p)); });
        offset += page.photos.length;
        total.textContent = page.total + " photos" + (offset < page.total ? ", " + offset + " shown" : "");
        more.hidden = offset >= page.total;
        document.body.dataset.ready = "1";
      });
    }
    more.addEventListener("click", load);
    load();
  }

  // --- one photo -------------------------------------------------------------------------
  var SHOWN = ["path", "root", "status", "reasons", "warnings", "decided", "format", "width", "height", "make",
    "model", "software", "datetime_original", "utc_offset", "latitude", "longitude", "gps_source", "file_latitude",
    "file_longitude", "altitude", "img_direction", "img_direction_ref", "gps_h_error", "gps_dop", "gps_flags",
    "position_table", "source_split", "split", "cell", "spot_id", "heading_sector", "dup_group_id", "dup_kind",
    "dup_keep", "dup_match", "sharpness", "entropy_bits", "file_size", "sha256", "error"];
  function photoView(id) {
    view.replaceChildren(el("p", { "class": "muted", text: "loading" }));
    getJSON("/api/photos/" + encodeURIComponent(id)).then(function (p) {
      var fields = el("table", { "class": "fields", id: "fields" });
      SHOWN.forEach(function (k) {
        var v = p[k];
        if (v === null || v === undefined || (Array.isArray(v) && !v.length)) return;
        fields.appendChild(el("tr", { "data-field": k }, [el("td", { text: k }), el("td", { text: Array.isArray(v) ? v.join(", ") : fmt(v) })]));
      });
      var actions = el("div", { "class": "actions" }, [
        el("button", { id: "exclude", text: "Exclude", on: { click: function () { decide("exclude", [id]).then(refresh); } } }),
        el("button", { id: "include", text: "Include", on: { click: function () { decide("include", [id]).then(refresh); } } })
      ]);
      if (p.dup_group_id !== null && p.dup_group_id !== undefined) {
        actions.appendChild(el("button", { id: "alone", text: "Not a copy (take out of its group)", on: { click: function () { decide("alone", [id]).then(refresh); } } }));
        actions.appendChild(el("button", { id: "keeper", text: "Keep this one", on: { click: function () { decide("keeper", [id]).then(refresh); } } }));
      }
      var heading = el("input", { id: "heading", type: "number", min: 0, max: 359.9, step: "any", value: p.img_direction === null ? "" : p.img_direction });
      var headingRow = el("div", { "class": "actions" }, [el("label", {}, ["heading ", heading]),
        el("button", { id: "save-heading", text: "Set heading", on: { click: function () {
          decide("heading", [id], { heading: parseFloat(heading.value) }).then(refresh);
        } } })]);
      var mapBox = el("div", { "class": "minimap", id: "photo-map" });
      var lat = el("input", { id: "lat", size: 11, value: p.latitude === null ? "" : p.latitude });
      var lon = el("input", { id: "lon", size: 11, value: p.longitude === null ? "" : p.longitude });
      var posRow = el("div", { "class": "actions" }, [el("label", {}, ["lat ", lat]), el("label", {}, ["lon ", lon]),
        el("button", { id: "save-position", text: "Set position", on: { click: function () {
          decide("position", [id], { latitude: parseFloat(lat.value), longitude: parseFloat(lon.value) }).then(refresh);
        } } })]);
      var noteRow = el("div", { "class": "actions" }, [el("label", {}, ["why (optional) ",
        el("input", { id: "note", size: 40, maxlength: 2000, placeholder: "kept with the next decision" })])]);
      var decisions = el("ul", { id: "photo-decisions" });
      (p.decisions || []).forEach(function (d) { decisions.appendChild(decisionItem(d, refresh)); });
      var members = el("div", { "class": "members" });
      (p.group_members || []).forEach(function (m) { members.appendChild(card(m)); });
      view.replaceChildren(el("div", { "class": "photo" }, [
        el("div", {}, [el("img", { "class": "large", src: "/image/" + encodeURIComponent(id), alt: p.path }),
                       p.group_members ? el("h3", { text: "its duplicate group" }) : null, members]),
        el("div", {}, [el("h2", { text: p.path, id: "photo-title" }), noteRow, actions, fields, el("h3", { text: "position" }),
                       mapBox, posRow, headingRow, el("h3", { text: "decisions on this photo" }), decisions])
      ]));
      if (window.L) {
        var map = leafletMap(mapBox);
        var here = p.latitude !== null ? [p.latitude, p.longitude] : [39.9515, -75.1915];
        map.setView(here, 18);
        var pin = L.divIcon({ className: "gpskit-pin", iconSize: [18, 18] });
        var marker = L.marker(here, { draggable: true, icon: pin }).addTo(map);
        marker.on("dragend", function () {
          var at = marker.getLatLng();
          lat.value = at.lat.toFixed(7); lon.value = at.lng.toFixed(7);
        });
        window.gpskitMarker = marker;
      }
      document.body.dataset.ready = "1";
    }, function (e) { view.replaceChildren(el("p", { text: e.message })); });
    function refresh() { photoView(id); }
  }
  function decisionItem(d, after) {
    var text = d.kind + " by " + d.author + " at " + d.created_at.slice(0, 19) +
      (Object.keys(d.value || {}).length ? " " + JSON.stringify(d.value) : "") +
      (d.note ? " (" + d.note + ")" : "") +
      (d.undone_at ? " (undone by " + d.undone_by + ")" : "");
    var item = el("li", { "data-decision": d.id }, [text + " "]);
    if (!d.undone_at) {
      item.appendChild(el("button", { text: "undo", "data-undo": d.id, on: { click: function () {
        var who; try { who = author(); } catch (e) { toast(e.message, true); return; }
        send("/api/decisions/" + encodeURIComponent(d.id) + "/undo", { author: who }).then(function () { toast("undone"); after(); },
          function (e) { toast(e.message, true); });
      } } }));
    }
    return item;
  }

  // --- duplicate groups ------------------------------------------------------------------
  function groupsView() {
    var list = el("div", { id: "groups" });
    var selected = {};
    var merge = el("button", { id: "merge", text: "Merge selected photos into one group", on: { click: function () {
      var ids = Object.keys(selected).filter(function (k) { return selected[k]; });
      if (ids.length > 20 && !window.confirm("Merge " + ids.length + " photos into one group?")) return;
      decide("merge", ids).then(groupsView);
    } } });
    var regroup = el("button", { id: "regroup", text: "Regroup now (gpskit dedup)", hidden: "", on: { click: function () {
      regroup.disabled = true; toast("regrouping ...");
      send("/api/regroup", {}).then(function () { toast("regrouped"); groupsView(); },
        function (e) { toast(e.message, true); regroup.disabled = false; });
    } } });
    var pending = el("span", { id: "pending", "class": "muted" });
    view.replaceChildren(el("div", { "class": "actions" }, [merge, regroup, pending]), list);
    getJSON("/api/status").then(function (s) {
      if (!s.groups_current) {
        regroup.hidden = false;
        pending.textContent = "group decisions made since the last dedup show after regrouping";
      }
    });
    getJSON("/api/groups?limit=50").then(function (found) {
      if (!found.groups.length) list.appendChild(el("p", { text: "no duplicate groups (run gpskit dedup)" }));
      found.groups.forEach(function (g) {
        var members = el("div", { "class": "members" });
        g.members.forEach(function (m) {
          var box = el("input", { type: "checkbox", "data-select": m.id, on: { change: function (e) { selected[m.id] = e.target.checked; } } });
          var evidence = el("div", { "class": "evidence" }, [
            (m.keep ? "KEEPER" : "copy: " + (m.match || "via others")) +
            (m.transform ? ", " + m.transform : "") +
            (m.phash_distance !== null ? ", " + m.phash_distance + " bits" : "") +
            (m.gps_offset_m !== null ? ", " + Math.round(m.gps_offset_m) + " m" : "") +
            (m.datetime_original ? ", " + m.datetime_original : "") +
            (m.group_decided ? " [" + m.group_decided + "]" : "")]);
          var acts = el("div", { "class": "actions" }, [box,
            el("button", { text: "split out", "data-alone": m.id, on: { click: function () { decide("alone", [m.id]).then(groupsView); } } }),
            m.keep ? null : el("button", { text: "keep this", "data-keeper": m.id, on: { click: function () { decide("keeper", [m.id]).then(groupsView); } } })]);
          members.appendChild(card(m, [evidence, acts]));
        });
        list.appendChild(el("div", { "class": "group", "data-group": g.group }, [
          el("h3", { text: "group " + g.group + " (" + g.kind + ", " + g.members.length + " photos)" }), members]));
      });
      document.body.dataset.ready = "1";
    });
  }

  // --- map -------------------------------------------------------------------------------
  function mapView() {
    var box = el("div", { id: "bigmap" });
    view.replaceChildren(box);
    getJSON("/api/map").then(function (data) {
      var map = leafletMap(box);
      var bounds = [];
      if (data.region) { var r = L.geoJSON(data.region, { style: { color: "#333", weight: 2, fill: false } }).addTo(map); bounds.push(r.getBounds()); }
      if (data.gaps) L.geoJSON(data.gaps, { style: { color: "#e53935", weight: 1, fillOpacity: 0.15 } }).addTo(map);
      if (data.plan) L.geoJSON(data.plan, { style: { color: "#1e88e5", weight: 2 }, pointToLayer: function (f, at) { return L.circleMarker(at, { radius: 3 }); } }).addTo(map);
      var points = data.photos.map(function (p) {
        var colour = p[4] === "accepted" ? "#2e7d32" : "#c62828";
        var m = L.circleMarker([p[1], p[2]], { radius: 4, color: colour, fillOpacity: 0.8 });
        m.bindPopup(function () {
          return el("div", {}, [el("img", { src: "/thumb/" + encodeURIComponent(p[0]), width: 160 }),
            el("div", { text: (p[5] !== null ? "spot " + p[5] + ", " : "") +
                              (p[3] !== null ? "heading " + Math.round(p[3]) + "°" : "no heading") }),
            el("div", {}, [el("a", { href: "#/photo/" + encodeURIComponent(p[0]), text: "open" })])]);
        });
        return m;
      });
      var layer = L.featureGroup(points).addTo(map);
      if (points.length) bounds.push(layer.getBounds());
      if (bounds.length) map.fitBounds(bounds[bounds.length - 1]); else map.setView([39.9515, -75.1915], 16);
      document.body.dataset.ready = "1";
      document.body.dataset.points = String(points.length);
    });
  }

  // --- decisions -------------------------------------------------------------------------
  function decisionsView() {
    var list = el("ul", { id: "decisions" });
    view.replaceChildren(el("p", {}, [el("a", { href: "/api/decisions.parquet", text: "export as Parquet", id: "export" })]), list);
    getJSON("/api/decisions").then(function (found) {
      found.decisions.slice().reverse().forEach(function (d) {
        var item = decisionItem(d, decisionsView);
        d.photos.forEach(function (p) { item.appendChild(el("a", { href: "#/photo/" + encodeURIComponent(p.id), text: " " + p.path })); });
        list.appendChild(item);
      });
      document.body.dataset.ready = "1";
    });
  }

  // --- predict ---------------------------------------------------------------------------
  function predictView() {
    var input = el("input", { type: "file", accept: "image/*", id: "upload" });
    var drop = el("div", { "class": "drop", id: "drop" }, ["drop a photo here, or ", input]);
    var result = el("div", { id: "prediction" });
    var box = el("div", { id: "predictmap" });
    view.replaceChildren(drop, result, box);
    var map = window.L ? leafletMap(box) : null;
    if (map) map.setView([39.9515, -75.1915], 16);
    var layer = map ? L.layerGroup().addTo(map) : null;
    function upload(file) {
      result.textContent = "placing " + file.name + " ...";
      fetch("/api/predict", { method: "POST", credentials: "same-origin", headers: { "X-Gpskit-Token": TOKEN }, body: file })
        .then(function (r) { return r.json().then(function (b) { if (!r.ok) throw new Error(b.error); return b; }); })
        .then(function (p) {
          result.replaceChildren(el("p", { text: "predicted " + p.latitude.toFixed(6) + ", " + p.longitude.toFixed(6) + " by " + p.method, id: "predicted" }));
          var near = el("div", { "class": "members" });
          p.neighbours.forEach(function (n) {
            near.appendChild(el("div", { "class": "card" }, [
              n.id ? el("img", { src: "/thumb/" + encodeURIComponent(n.id) }) : null,
              el("div", { "class": "caption", text: n.path + " (" + n.latitude.toFixed(6) + ", " + n.longitude.toFixed(6) + "), weight " + n.weight.toFixed(2) })]));
          });
          result.appendChild(near);
          if (layer) {
            layer.clearLayers();
            L.marker([p.latitude, p.longitude]).addTo(layer);
            p.neighbours.forEach(function (n) { L.circleMarker([n.latitude, n.longitude], { radius: 4 }).addTo(layer); });
            map.setView([p.latitude, p.longitude], 18);
          }
          document.body.dataset.ready = "1";
        }, function (e) { result.textContent = e.message; toast(e.message, true); });
    }
    input.addEventListener("change", function () { if (input.files[0]) upload(input.files[0]); });
    drop.addEventListener("dragover", function (e) { e.preventDefault(); });
    drop.addEventListener("drop", function (e) { e.preventDefault(); if (e.dataTransfer.files[0]) upload(e.dataTransfer.files[0]); });
    document.body.dataset.ready = "1";
  }

  // --- routing ---------------------------------------------------------------------------
  function route() {
    document.body.dataset.ready = "0";
    var q = query();
    var parts = q.path.split("/").filter(Boolean);
    var name = parts[0] || "photos";
    document.querySelectorAll("nav a").forEach(function (a) { a.classList.toggle("active", a.dataset.view === name); });
    if (name === "photo" && parts[1]) photoView(decodeURIComponent(parts[1]));
    else if (name === "groups") groupsView();
    else if (name === "map") mapView();
    else if (name === "decisions") decisionsView();
    else if (name === "predict" && PREDICT) predictView();
    else photosView(q.params);
  }
  window.addEventListener("hashchange", route);
  route();
})();
