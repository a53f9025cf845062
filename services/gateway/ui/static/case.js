// The case page's small map: the case's grid (GeoJSON from the page's data-map
// attribute) and the reported point, on a plain background (no tile server).
"use strict";

document.addEventListener("DOMContentLoaded", function () {
  var element = document.getElementById("case-map");
  if (!element || typeof L === "undefined") {
    return;
  }
  var data = JSON.parse(element.getAttribute("data-map") || "{}");
  var map = L.map(element, {
    zoomControl: false,
    attributionControl: false,
    keyboard: false,
    scrollWheelZoom: false,
  });
  var layers = [];
  if (data.geometry) {
    layers.push(
      L.geoJSON(data.geometry, {
        style: { color: "#1d4ed8", weight: 2, fillColor: "#93c5fd", fillOpacity: 0.35 },
      })
    );
  }
  if (data.location) {
    var point = [data.location[1], data.location[0]];
    layers.push(
      L.circleMarker(point, {
        radius: 7, color: "#b91c1c", weight: 2, fillColor: "#ef4444", fillOpacity: 0.9,
      })
    );
  }
  if (layers.length === 0) {
    element.classList.add("case-map-empty");
    return;
  }
  // The view first: vector layers need one to be drawn.
  var group = L.featureGroup(layers);
  map.fitBounds(group.getBounds().pad(0.2), { maxZoom: 17 });
  group.addTo(map);
});
