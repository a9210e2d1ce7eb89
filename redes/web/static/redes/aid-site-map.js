/* A site's map point: a small Leaflet map next to the latitude and longitude fields; a tap places the pin (it can
 * be dragged) and fills the fields, typing in the fields moves it. Optional: the fields work without it.
 * Markup: <div data-point-map data-lat="id_lat" data-lon="id_lon" data-tiles=... data-center="[lat, lon]"
 * data-readonly></div>. */
(function () {
  "use strict";

  function init(el) {
    var lat = el.dataset.lat ? document.getElementById(el.dataset.lat) : null;
    var lon = el.dataset.lon ? document.getElementById(el.dataset.lon) : null;
    var readonly = el.hasAttribute("data-readonly");
    var fixed = el.dataset.point ? JSON.parse(el.dataset.point) : null;
    var center = el.dataset.center ? JSON.parse(el.dataset.center) : null;
    var map = L.map(el, { scrollWheelZoom: false });
    if (el.dataset.tiles) {
      L.tileLayer(el.dataset.tiles, { maxZoom: 19, attribution: el.dataset.attribution || "" }).addTo(map);
    }
    var marker = null;
    function current() {
      if (fixed) return fixed;
      if (!lat || !lon) return null;
      var y = parseFloat(lat.value), x = parseFloat(lon.value);
      return isNaN(y) || isNaN(x) ? null : [y, x];
    }
    function place(at, zoom) {
      if (marker) {
        marker.setLatLng(at);
      } else {
        marker = L.marker(at, { draggable: !readonly }).addTo(map);
        marker.on("dragend", function () {
          var p = marker.getLatLng();
          lat.value = p.lat.toFixed(6);
          lon.value = p.lng.toFixed(6);
        });
      }
      map.setView(at, zoom || Math.max(map.getZoom() || 0, 16));
    }
    var start = current();
    if (start) {
      place(start, 16);
    } else if (center) {
      map.setView(center, 13);
    } else {
      map.setView([23.6, -102.5], 5);
    }
    if (!readonly && lat && lon) {
      map.on("click", function (e) {
        lat.value = e.latlng.lat.toFixed(6);
        lon.value = e.latlng.lng.toFixed(6);
        place([e.latlng.lat, e.latlng.lng]);
      });
      function typed() {
        var at = current();
        if (at) place(at);
      }
      lat.addEventListener("change", typed);
      lon.addEventListener("change", typed);
    }
    // A map inside a closed <details> has no size until it opens.
    var box = el.closest("details");
    if (box) {
      box.addEventListener("toggle", function () {
        if (!box.open) return;
        map.invalidateSize();
        var at = current();
        if (at) map.setView(at, Math.max(map.getZoom() || 0, 16));
      });
    }
    el.classList.add("map-ready");
  }

  function start() {
    if (typeof L === "undefined") return;
    var maps = document.querySelectorAll("[data-point-map]");
    for (var i = 0; i < maps.length; i++) init(maps[i]);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
