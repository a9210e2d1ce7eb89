/* The public map of aid sites: points from the GeoJSON embedded in the page, coloured by kind. No personal data
 * is in the GeoJSON (aid.queries.public_sites). Base tiles may fail (no internet): the points are drawn regardless. */
(function () {
  "use strict";
  var COLOURS = { collection: "#0b5d4b", stand: "#d69a00", warehouse: "#5b6770", kitchen: "#c0392b" };

  function text(tag, value) {
    var el = document.createElement(tag);
    el.textContent = value;
    return el;
  }

  function start() {
    var el = document.getElementById("aid-map");
    var source = document.getElementById("aid-sites");
    if (!el || !source || typeof L === "undefined") return;
    var data = JSON.parse(source.textContent) || { type: "FeatureCollection", features: [] };
    var map = L.map(el, { scrollWheelZoom: false });
    if (el.dataset.tiles) {
      L.tileLayer(el.dataset.tiles, { maxZoom: 19, attribution: el.dataset.attribution || "" }).addTo(map);
    }
    var layer = L.geoJSON(data, {
      pointToLayer: function (feature, latlng) {
        var kind = (feature.properties || {}).kind;
        return L.circleMarker(latlng, {
          radius: 9, color: "#1b2227", weight: 1.5, fillColor: COLOURS[kind] || "#7b8a93", fillOpacity: 0.85
        });
      },
      onEachFeature: function (feature, lyr) {
        var p = feature.properties || {};
        lyr.bindPopup(function () {
          var box = document.createElement("div");
          box.appendChild(text("strong", p.name || ""));
          box.appendChild(text("div", p.kind_label || p.kind || ""));
          if (p.address) box.appendChild(text("div", p.address));
          if (p.schedule) box.appendChild(text("div", p.schedule));
          if (p.portions_per_day) box.appendChild(text("div", p.portions_per_day + " " + el.dataset.labelPortions));
          return box;
        });
        if (p.name) lyr.bindTooltip(p.name);
      }
    }).addTo(map);
    var bounds = layer.getBounds();
    if (bounds.isValid()) {
      map.fitBounds(bounds, { padding: [24, 24], maxZoom: 16 });
    } else {
      map.setView([23.6, -102.5], 4);
    }
    el.setAttribute("data-features", String((data.features || []).length));
    el.classList.add("map-ready");
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
