/* The map of open needs: one circle per block, sized by its open needs and coloured by the share overdue.
 * Counts come aggregated (no personal data); counts hidden from observers arrive as null and draw grey.
 * Base tiles may fail (no internet): the circles are drawn regardless. */
(function () {
  "use strict";

  var GREEN = "#1e7b3a", AMBER = "#d69a00", RED = "#c0392b", GREY = "#7b8a93";

  function colour(p) {
    if (typeof p.open !== "number" || typeof p.overdue !== "number" || p.open === 0) return GREY;
    var share = p.overdue / p.open;
    return share >= 0.5 ? RED : share > 0 ? AMBER : GREEN;
  }

  function centre(feature) {
    var g = feature.geometry;
    if (g.type === "Point") return L.latLng(g.coordinates[1], g.coordinates[0]);
    return L.geoJSON(feature).getBounds().getCenter();
  }

  function init(el) {
    var map = L.map(el, { scrollWheelZoom: false });
    if (el.dataset.tiles) {
      L.tileLayer(el.dataset.tiles, { maxZoom: 19, attribution: el.dataset.attribution || "" }).addTo(map);
    }
    fetch(el.dataset.needsGeojson, { credentials: "same-origin", headers: { Accept: "application/geo+json" } })
      .then(function (response) {
        if (!response.ok) throw new Error(String(response.status));
        return response.json();
      })
      .then(function (data) {
        var group = L.featureGroup();
        data.features.forEach(function (feature) {
          var p = feature.properties || {};
          var n = typeof p.open === "number" ? p.open : 2;
          var circle = L.circleMarker(centre(feature), {
            radius: Math.min(30, 6 + Math.sqrt(n) * 4),
            color: "#1b2227", weight: 1, fillColor: colour(p), fillOpacity: 0.75
          });
          var lines = [p.name + " · " + p.code];
          if (typeof p.open === "number") lines.push(el.dataset.labelOpen + ": " + p.open);
          if (typeof p.overdue === "number") lines.push(el.dataset.labelOverdue + ": " + p.overdue);
          var content = function () {
            var box = document.createElement("div");
            lines.forEach(function (text) { var d = document.createElement("div"); d.textContent = text; box.appendChild(d); });
            return box;
          };
          circle.bindTooltip(content(), { sticky: true });
          circle.bindPopup(content);
          group.addLayer(circle);
        });
        group.addTo(map);
        var bounds = group.getBounds();
        if (bounds.isValid()) { map.fitBounds(bounds, { padding: [24, 24], maxZoom: 16 }); } else { map.setView([23.6, -102.5], 4); }
        el.setAttribute("data-features", String(data.features.length));
        el.classList.add("map-ready");
      })
      .catch(function () {
        map.setView([23.6, -102.5], 4);
        var note = document.createElement("p");
        note.className = "map-note";
        note.textContent = el.dataset.labelFailed;
        el.parentNode.insertBefore(note, el.nextSibling);
        el.classList.add("map-failed");
      });
  }

  function start() {
    if (typeof L === "undefined") return;
    var maps = document.querySelectorAll("[data-needs-geojson]");
    for (var i = 0; i < maps.length; i++) init(maps[i]);
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
