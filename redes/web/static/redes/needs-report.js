/* The public report form: tap the map to mark the place (optional; the form works without it). */
(function () {
  "use strict";
  var el = document.getElementById("report-map");
  if (!el || typeof L === "undefined") return;
  var lat = document.getElementById("id_lat"), lon = document.getElementById("id_lon");
  var shapeNode = document.getElementById("municipality-shape");
  var shape = shapeNode ? JSON.parse(shapeNode.textContent) : null;
  el.hidden = false;
  document.getElementById("report-map-help").hidden = false;
  var map = L.map(el, { scrollWheelZoom: false });
  if (el.dataset.tiles) L.tileLayer(el.dataset.tiles, { maxZoom: 19, attribution: el.dataset.attribution || "" }).addTo(map);
  var marker = null;
  function place(y, x) {
    if (marker) { marker.setLatLng([y, x]); } else { marker = L.marker([y, x]).addTo(map); }
    lat.value = y.toFixed(6); lon.value = x.toFixed(6);
  }
  if (shape) {
    var layer = L.geoJSON(shape, { style: { color: "#0b5d4b", weight: 2, fillOpacity: 0.05 }, interactive: false }).addTo(map);
    if (layer.getBounds().isValid()) { map.fitBounds(layer.getBounds(), { padding: [8, 8] }); } else { map.setView([23.6, -102.5], 4); }
  } else {
    map.setView([23.6, -102.5], 4);
  }
  if (lat.value && lon.value) place(parseFloat(lat.value), parseFloat(lon.value));
  map.on("click", function (e) { place(e.latlng.lat, e.latlng.lng); });
})();
