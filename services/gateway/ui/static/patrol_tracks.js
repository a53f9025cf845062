// The map's patrol layer: a month's patrol tracks (from /map/patrols.geojson) drawn
// over the grids, flagged patrols dashed, with a control to switch the layer off. The
// map page's own script (grid_map.js) makes the map and hands it over as
// element.gridworkMap; this one only adds a layer to it.
(function () {
  "use strict";
  var element = document.getElementById("grid-map");
  if (!element || !window.L || !element.gridworkMap || !element.dataset.patrolsUrl) {
    return;
  }
  var map = element.gridworkMap;
  // The month shown follows the map's URL (?month=2026-11), else this month.
  var month = new URLSearchParams(window.location.search).get("month");
  var url = element.dataset.patrolsUrl + (month ? "?month=" + encodeURIComponent(month) : "");
  fetch(url, {
    credentials: "same-origin",
    headers: { Accept: "application/geo+json" },
  })
    .then(function (response) {
      if (!response.ok) {
        throw new Error("patrol tracks: " + response.status);
      }
      return response.json();
    })
    .then(function (collection) {
      var layer = L.geoJSON(collection, {
        // Tracks are few lines: drawn as SVG above the grids' canvas, so each keeps its own
        // tooltip and takes clicks only where the line is.
        renderer: L.svg(),
        style: function (feature) {
          var flagged = (feature.properties.flags || []).length > 0;
          return {
            color: flagged ? "#b3261e" : "#1a5fb4",
            weight: 3,
            opacity: 0.8,
            dashArray: flagged ? "6 6" : null,
            className: "patrol-track",
          };
        },
        onEachFeature: function (feature, path) {
          var p = feature.properties;
          var km = (p.distance_m / 1000).toFixed(2);
          var text = p.worker_id + " · " + km + " km · " + p.started_at.slice(0, 16);
          if ((p.flags || []).length) {
            text += " · " + collection.labels.flagged + ": " + p.flags.join(", ");
          }
          path.bindTooltip(text, { sticky: true });
        },
      }).addTo(map);
      var overlays = {};
      overlays[collection.labels.layer] = layer;
      L.control.layers(null, overlays, { collapsed: false }).addTo(map);
      element.dataset.patrolTracks = String(collection.features.length);
    })
    .catch(function () {
      element.dataset.patrolTracks = "failed"; // the rest of the map works without it
    });
})();
