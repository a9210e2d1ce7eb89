/* The map of a cascade broadcast: each node's shape coloured by its acknowledgement (acknowledged, waiting,
 * overdue, vacant, not reached yet), refreshed every few seconds while the broadcast is sending. No personal
 * data in the GeoJSON. Base tiles may fail (no internet): the shapes are drawn regardless. */
(function () {
  "use strict";

  var COLOURS = { acked: "#1e7b3a", waiting: "#d69a00", overdue: "#c0392b", vacant: "#7b8a93", pending: "#cfd8dc" };

  function init(el) {
    var map = L.map(el, { scrollWheelZoom: false });
    if (el.dataset.tiles) {
      L.tileLayer(el.dataset.tiles, { maxZoom: 19, attribution: el.dataset.attribution || "" }).addTo(map);
    }
    var layer = null, fitted = false;
    function draw(data) {
      if (layer) map.removeLayer(layer);
      layer = L.geoJSON(data, {
        style: function (feature) {
          var p = feature.properties || {};
          var top = p.depth === undefined ? false : p.depth <= (el._minDepth || 0);
          return { color: "#1b2227", weight: top ? 2.5 : 1, fillColor: COLOURS[p.state] || "#7b8a93", fillOpacity: top ? 0.15 : 0.7 };
        },
        onEachFeature: function (feature, lyr) {
          var p = feature.properties || {};
          lyr.bindTooltip(p.name + " · " + p.code + " — " + p.label, { sticky: true });
        }
      }).addTo(map);
      if (!fitted) {
        var bounds = layer.getBounds();
        if (bounds.isValid()) { map.fitBounds(bounds, { padding: [16, 16], maxZoom: 17 }); } else { map.setView([23.6, -102.5], 4); }
        fitted = true;
      }
      var counts = {};
      data.features.forEach(function (f) { var s = (f.properties || {}).state; counts[s] = (counts[s] || 0) + 1; });
      el.setAttribute("data-features", String(data.features.length));
      el.setAttribute("data-acked", String(counts.acked || 0));
      el.classList.add("map-ready");
    }
    function load() {
      return fetch(el.dataset.ackGeojson, { credentials: "same-origin", headers: { Accept: "application/geo+json" } })
        .then(function (response) {
          if (!response.ok) throw new Error(String(response.status));
          return response.json();
        })
        .then(function (data) {
          var depths = data.features.map(function (f) { return (f.properties || {}).depth; }).filter(function (d) { return typeof d === "number"; });
          el._minDepth = depths.length ? Math.min.apply(null, depths) : 0;
          // Draw the wide shapes first so the smaller ones stay on top and clickable.
          data.features.sort(function (a, b) { return (a.properties.depth || 0) - (b.properties.depth || 0); });
          draw(data);
        });
    }
    load().catch(function () {
      map.setView([23.6, -102.5], 4);
      var note = document.createElement("p");
      note.className = "map-note";
      note.textContent = el.dataset.labelFailed;
      el.parentNode.insertBefore(note, el.nextSibling);
      el.classList.add("map-failed");
    });
    var every = parseInt(el.dataset.refresh || "0", 10);
    if (every > 0) {
      setInterval(function () { load().catch(function () {}); }, every * 1000);
    }
  }

  function start() {
    if (typeof L === "undefined") return;
    var maps = document.querySelectorAll("[data-ack-geojson]");
    for (var i = 0; i < maps.length; i++) init(maps[i]);
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
