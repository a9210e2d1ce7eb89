/* The territory map: the children's polygons from this page's own GeoJSON endpoint, drawn with Leaflet.
 * Base tiles come from a configurable URL and may fail (no internet): the shapes are drawn regardless.
 * Labels come translated from data-label-* attributes of the map element. */
(function () {
  "use strict";

  var GREEN = "#1e7b3a", AMBER = "#d69a00", RED = "#c0392b", GREY = "#7b8a93";

  function fillFor(p) {
    if (typeof p.coverage === "number") {
      return p.coverage >= 80 ? GREEN : p.coverage >= 50 ? AMBER : RED;
    }
    if (p.liaison === true) return GREEN;
    if (p.liaison === false) return RED;
    return GREY;
  }

  function popup(el, p) {
    var box = document.createElement("div");
    var title = document.createElement("strong");
    title.textContent = p.name;
    box.appendChild(title);
    var code = document.createElement("div");
    code.textContent = p.code;
    box.appendChild(code);
    var status = null;
    if (typeof p.coverage === "number") {
      status = el.dataset.labelCoverage + ": " + p.coverage + " %";
    } else if (p.liaison === true) {
      status = el.dataset.labelHeld;
    } else if (p.liaison === false) {
      status = el.dataset.labelVacant;
    }
    if (status) {
      var line = document.createElement("div");
      line.textContent = status;
      box.appendChild(line);
    }
    if (p.url) {
      var link = document.createElement("a");
      link.href = p.url;
      link.textContent = el.dataset.labelOpen;
      box.appendChild(link);
    }
    return box;
  }

  function init(el) {
    var map = L.map(el, { scrollWheelZoom: false });
    if (el.dataset.tiles) {
      L.tileLayer(el.dataset.tiles, { maxZoom: 19, attribution: el.dataset.attribution || "" }).addTo(map);
    }
    fetch(el.dataset.geojson, { credentials: "same-origin", headers: { Accept: "application/geo+json" } })
      .then(function (response) {
        if (!response.ok) throw new Error(String(response.status));
        return response.json();
      })
      .then(function (data) {
        var layer = L.geoJSON(data, {
          style: function (feature) {
            var p = feature.properties || {};
            if (p.self) {
              return { color: "#0b5d4b", weight: 2, dashArray: "6 4", fill: false, interactive: false };
            }
            return { color: "#1b2227", weight: 1.5, fillColor: fillFor(p), fillOpacity: 0.7 };
          },
          pointToLayer: function (feature, latlng) {
            return L.circleMarker(latlng, { radius: 8 });
          },
          onEachFeature: function (feature, lyr) {
            var p = feature.properties || {};
            if (p.self) return;
            lyr.bindPopup(function () { return popup(el, p); });
            lyr.bindTooltip(p.name, { sticky: true });
          }
        }).addTo(map);
        var bounds = layer.getBounds();
        if (bounds.isValid()) {
          map.fitBounds(bounds, { padding: [16, 16], maxZoom: 17 });
        } else {
          map.setView([23.6, -102.5], 4);
        }
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
    var maps = document.querySelectorAll("[data-geojson]");
    for (var i = 0; i < maps.length; i++) init(maps[i]);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
