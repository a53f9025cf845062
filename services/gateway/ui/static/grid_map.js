// The map page (一张图): the caller's grids from /map/grids.geojson (simplified for the
// zoom), coloured by the open and overdue counts of /map/cases.json (under the URL's
// filters), the cases as circle markers, and a grid's panel loaded with htmx on click.
// No tile server: the grids are drawn on a plain background.
(function () {
  "use strict";

  var element = document.getElementById("grid-map");
  if (!element || !window.L) {
    return;
  }
  var status = document.getElementById("map-status");
  var picker = document.getElementById("grid-picker");
  var PLACEHOLDER = "000000000000000";
  var COLOURS = {
    overdue: { color: "#7a1b12", fillColor: "#d92d20" },
    open: { color: "#7a5200", fillColor: "#f5b400" },
    none: { color: "#245c35", fillColor: "#8fcf9f" },
  };

  var REFRESH_MS = 60000; // the wall map follows the cases without a reload
  var map = L.map(element, {
    attributionControl: false,
    zoomSnap: 0.25,
    zoomDelta: 0.5,
    minZoom: 6,
    maxZoom: 18,
  });
  element.gridworkMap = map; // for the layers other scripts add (patrol_tracks.js)
  var gridLayer = null;
  // Cases above the grids whichever is drawn last (the overlay pane is at z-index 400).
  map.createPane("cases").style.zIndex = 450;
  var caseLayer = L.layerGroup().addTo(map);
  var counts = {};
  var shapesZoom = null;
  var shapes = null;
  var selected = null;

  function say(key) {
    status.textContent = key ? status.dataset[key] : "";
    status.classList.toggle("map-status--hidden", !key);
  }

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.json();
      });
  }

  function statusOf(code) {
    var count = counts[code];
    if (count && count.overdue > 0) {
      return "overdue";
    }
    if (count && count.open > 0) {
      return "open";
    }
    return "none";
  }

  function showPanel(code) {
    selected = code;
    if (picker.value !== code) {
      picker.value = code;
    }
    htmx.ajax("GET", element.dataset.panelUrl.replace(PLACEHOLDER, code), {
      target: "#grid-panel",
      swap: "innerHTML",
    });
  }

  function drawGrids(collection) {
    if (gridLayer) {
      map.removeLayer(gridLayer);
    }
    var tally = { overdue: 0, open: 0, none: 0 };
    gridLayer = L.geoJSON(collection, {
      style: function (feature) {
        var state = statusOf(feature.properties.code);
        tally[state] += 1;
        return {
          className: "grid grid--" + state + " grid-" + feature.properties.code,
          color: COLOURS[state].color,
          fillColor: COLOURS[state].fillColor,
          weight: 1,
          fillOpacity: 0.55,
        };
      },
      onEachFeature: function (feature, layer) {
        layer.bindTooltip(feature.properties.name + " · " + feature.properties.code, { sticky: true });
        layer.on("click", function () {
          showPanel(feature.properties.code);
        });
      },
    }).addTo(map);
    document.getElementById("legend-overdue").textContent = tally.overdue;
    document.getElementById("legend-open").textContent = tally.open;
    document.getElementById("legend-none").textContent = tally.none;
    return collection;
  }

  function fillPicker(collection) {
    var features = collection.features.slice().sort(function (a, b) {
      return a.properties.code < b.properties.code ? -1 : 1;
    });
    features.forEach(function (feature) {
      var option = document.createElement("option");
      option.value = feature.properties.code;
      option.textContent = feature.properties.name + " · " + feature.properties.code;
      picker.appendChild(option);
    });
    picker.disabled = false;
    picker.addEventListener("change", function () {
      if (picker.value && picker.value !== selected) {
        showPanel(picker.value);
      }
    });
  }

  function popupFor(point, labels) {
    var box = document.createElement("div");
    var link = document.createElement("a");
    link.href = point.url;
    link.textContent = point.category_name;
    box.appendChild(link);
    var line = document.createElement("div");
    line.textContent = point.state_label + (point.overdue ? " · " + labels.overdue : "");
    box.appendChild(line);
    return box;
  }

  function drawCases(summary) {
    counts = summary.grids;
    caseLayer.clearLayers();
    var drawn = 0;
    summary.cases.forEach(function (point) {
      if (point.lat === null || point.lon === null) {
        return;
      }
      drawn += 1;
      L.circleMarker([point.lat, point.lon], {
        pane: "cases",
        radius: 6,
        className: "case-point case-point--" + (point.overdue ? "overdue" : "open"),
        color: "#ffffff",
        weight: 2,
        fillColor: point.overdue ? "#7a1b12" : "#0b4f8a",
        fillOpacity: 0.95,
      })
        .bindPopup(popupFor(point, summary.labels))
        .addTo(caseLayer);
    });
    document.getElementById("legend-cases").textContent = drawn;
    return summary;
  }

  function zoomForShapes() {
    return Math.max(6, Math.min(18, Math.round(map.getZoom() || 12)));
  }

  function loadShapes(zoom, fit) {
    shapesZoom = zoom;
    return getJSON(element.dataset.gridsUrl + "?zoom=" + zoom).then(function (collection) {
      shapes = collection;
      drawGrids(collection);
      if (fit && collection.features.length) {
        map.fitBounds(gridLayer.getBounds(), { padding: [12, 12] });
      }
      return collection;
    });
  }

  map.setView([0, 0], 12);
  getJSON(element.dataset.casesUrl)
    .then(drawCases)
    .then(function (summary) {
      return loadShapes(12, true).then(function (collection) {
        fillPicker(collection);
        element.classList.add("grid-map--ready");
        say(summary.truncated ? "truncated" : null);
        map.on("zoomend", function () {
          // Finer geometry when zooming in, coarser when zooming out (cached per zoom).
          if (zoomForShapes() !== shapesZoom) {
            loadShapes(zoomForShapes(), false);
          }
        });
        window.setInterval(function () {
          getJSON(element.dataset.casesUrl)
            .then(drawCases)
            .then(function () {
              drawGrids(shapes);
            })
            .catch(function () {
              say("failed");
            });
        }, REFRESH_MS);
        // The fitted zoom may differ from the first guess.
        if (zoomForShapes() !== shapesZoom) {
          return loadShapes(zoomForShapes(), false);
        }
        return collection;
      });
    })
    .catch(function () {
      say("failed");
    });
})();
