// The map page (一张图). Everything is drawn on a canvas (Leaflet's canvas renderer): a
// county of 5,000+ grids would be as many SVG elements. The polygons come from
// /map/shapes.geojson for the zoom and the viewport (a little beyond it): the grids in
// view, or their villages' or townships' outlines when too many grids would be (the
// server decides by a feature budget). They are coloured by the open and overdue counts
// of /map/cases.json (under the URL's filters), summed per village and township for the
// outlines; cases are circle markers. Clicking a grid loads its panel with htmx;
// clicking an outline zooms into it. No tile server: a plain background.
(function () {
  "use strict";

  var element = document.getElementById("grid-map");
  if (!element || !window.L) {
    return;
  }
  var status = document.getElementById("map-status");
  var picker = document.getElementById("grid-picker");
  var PLACEHOLDER = "000000000000000";
  var PREFIXES = [9, 12, 15]; // township, village, grid codes: a code's prefix is its subtree
  var COLOURS = {
    overdue: { color: "#7a1b12", fillColor: "#d92d20" },
    open: { color: "#7a5200", fillColor: "#f5b400" },
    none: { color: "#245c35", fillColor: "#8fcf9f" },
  };
  var REFRESH_MS = 60000; // the wall map follows the cases without a reload
  var MIN_ZOOM = 6;
  var MAX_SHAPES_ZOOM = 17; // the service's finest outlines (full precision)
  var VIEW_PADDING = 0.25; // load a quarter of the view beyond each edge: small pans reuse it

  var map = L.map(element, {
    attributionControl: false,
    preferCanvas: true,
    zoomSnap: 0.25,
    zoomDelta: 0.5,
    minZoom: MIN_ZOOM,
    maxZoom: 18,
  });
  // One canvas for polygons and cases: a second canvas (another pane) would sit on top
  // and take every click, so the cases are kept above the polygons by drawing order.
  element.gridworkMap = map; // for the layers other scripts add (patrol_tracks.js)
  var caseLayer = L.layerGroup().addTo(map);
  var shapesLayer = null;
  var layersByCode = {};
  var counts = {}; // grid code -> {open, overdue}
  var totals = {}; // township, village or grid code -> {open, overdue} of its grids
  var shapes = null; // the last FeatureCollection drawn
  var loaded = null; // {zoom, bounds}: what `shapes` covers (bounds null: the whole scope)
  var gridsInScope = null;
  var sequence = 0; // answers of replaced requests are dropped
  var started = false;
  var selected = null;

  function say(key) {
    status.textContent = key ? status.dataset[key] : "";
    status.classList.toggle("map-status--hidden", !key);
  }

  function settled(isSettled) {
    // Tests and people alike: the map is ready once what it shows matches the view.
    element.classList.toggle("grid-map--ready", started && isSettled);
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
    var count = totals[code];
    if (count && count.overdue > 0) {
      return "overdue";
    }
    if (count && count.open > 0) {
      return "open";
    }
    return "none";
  }

  function styleOf(feature) {
    var state = statusOf(feature.properties.code);
    return {
      color: COLOURS[state].color,
      fillColor: COLOURS[state].fillColor,
      weight: feature.properties.level === "grid" ? 1 : 1.5,
      fillOpacity: 0.55,
    };
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

  function zoomInto(code) {
    var layer = layersByCode[code];
    if (layer) {
      map.fitBounds(layer.getBounds(), { padding: [12, 12] });
    }
  }

  function labelOf(properties) {
    var text = properties.name + " · " + properties.code;
    if (properties.level !== "grid") {
      text += " · " + properties.grids + " " + picker.dataset.grids;
    }
    return text;
  }

  function drawShapes(collection) {
    if (shapesLayer) {
      map.removeLayer(shapesLayer);
    }
    layersByCode = {};
    shapesLayer = L.geoJSON(collection, {
      style: styleOf,
      onEachFeature: function (feature, layer) {
        var properties = feature.properties;
        layersByCode[properties.code] = layer;
        layer.bindTooltip(labelOf(properties), { sticky: true });
        layer.on("click", function () {
          if (properties.level === "grid") {
            showPanel(properties.code);
          } else {
            zoomInto(properties.code);
          }
        });
      },
    }).addTo(map);
    caseLayer.eachLayer(function (marker) {
      marker.bringToFront();
    });
    element.dataset.level = collection.level;
    element.dataset.features = collection.features.length;
  }

  function fillPicker(collection) {
    while (picker.options.length > 1) {
      picker.remove(1);
    }
    collection.features
      .slice()
      .sort(function (a, b) {
        return a.properties.code < b.properties.code ? -1 : 1;
      })
      .forEach(function (feature) {
        var option = document.createElement("option");
        var state = statusOf(feature.properties.code);
        option.value = feature.properties.code;
        option.dataset.level = feature.properties.level;
        option.dataset.status = state;
        // Colour is never the only sign: the list says each one's state in words.
        option.textContent = labelOf(feature.properties) + " · " + picker.dataset[state];
        picker.appendChild(option);
      });
    picker.value = selected && layersByCode[selected] ? selected : "";
    picker.disabled = false;
  }

  picker.addEventListener("change", function () {
    var option = picker.selectedOptions[0];
    if (!picker.value || !option) {
      return;
    }
    if (option.dataset.level === "grid") {
      zoomInto(picker.value);
      if (picker.value !== selected) {
        showPanel(picker.value);
      }
    } else {
      zoomInto(picker.value);
    }
  });

  function sumCounts(grids) {
    counts = grids;
    totals = {};
    Object.keys(grids).forEach(function (code) {
      PREFIXES.forEach(function (length) {
        var key = code.slice(0, length);
        var total = totals[key] || (totals[key] = { open: 0, overdue: 0 });
        total.open += grids[code].open;
        total.overdue += grids[code].overdue;
      });
    });
  }

  function updateLegend() {
    var overdue = 0;
    var open = 0;
    Object.keys(counts).forEach(function (code) {
      if (counts[code].overdue > 0) {
        overdue += 1;
      } else if (counts[code].open > 0) {
        open += 1;
      }
    });
    document.getElementById("legend-overdue").textContent = overdue;
    document.getElementById("legend-open").textContent = open;
    if (gridsInScope !== null) {
      document.getElementById("legend-none").textContent = Math.max(0, gridsInScope - overdue - open);
    }
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
    sumCounts(summary.grids);
    caseLayer.clearLayers();
    var drawn = 0;
    summary.cases.forEach(function (point) {
      if (point.lat === null || point.lon === null) {
        return;
      }
      drawn += 1;
      L.circleMarker([point.lat, point.lon], {
        radius: 6,
        color: "#ffffff",
        weight: 2,
        fillColor: point.overdue ? "#7a1b12" : "#0b4f8a",
        fillOpacity: 0.95,
      })
        .bindPopup(popupFor(point, summary.labels))
        .addTo(caseLayer);
    });
    document.getElementById("legend-cases").textContent = drawn;
    updateLegend();
    return summary;
  }

  function shapesZoom() {
    return Math.max(MIN_ZOOM, Math.min(MAX_SHAPES_ZOOM, Math.round(map.getZoom())));
  }

  function loadShapes(zoom, bounds) {
    var mine = (sequence += 1);
    settled(false);
    var url = element.dataset.shapesUrl + "?zoom=" + zoom;
    if (bounds) {
      var clamp = function (value, limit) {
        return Math.max(-limit, Math.min(limit, value)).toFixed(5);
      };
      url += "&bbox=" + [
        clamp(bounds.getWest(), 180),
        clamp(bounds.getSouth(), 90),
        clamp(bounds.getEast(), 180),
        clamp(bounds.getNorth(), 90),
      ].join(",");
    }
    return getJSON(url).then(function (collection) {
      if (mine !== sequence) {
        return null; // a newer view asked since
      }
      shapes = collection;
      loaded = { zoom: zoom, bounds: bounds };
      if (gridsInScope === null) {
        gridsInScope = collection.grids;
        updateLegend();
      }
      drawShapes(collection);
      fillPicker(collection);
      settled(true);
      return collection;
    });
  }

  function loadView() {
    element.dataset.view = map.getBounds().toBBoxString(); // west,south,east,north
    var zoom = shapesZoom();
    var view = map.getBounds();
    if (loaded && loaded.zoom === zoom && (!loaded.bounds || loaded.bounds.contains(view))) {
      return Promise.resolve(shapes);
    }
    return loadShapes(zoom, view.pad(VIEW_PADDING));
  }

  function refreshCases() {
    getJSON(element.dataset.casesUrl)
      .then(drawCases)
      .then(function () {
        if (shapesLayer) {
          shapesLayer.setStyle(styleOf);
          fillPicker(shapes);
        }
      })
      .catch(function () {
        say("failed");
      });
  }

  map.setView([0, 0], 12);
  getJSON(element.dataset.casesUrl)
    .then(drawCases)
    .then(function (summary) {
      // The whole scope first, to learn where it is; then what the fitted view shows.
      return loadShapes(12, null).then(function (collection) {
        if (collection.bbox) {
          var box = collection.bbox;
          map.fitBounds([[box[1], box[0]], [box[3], box[2]]], { padding: [12, 12], animate: false });
        }
        started = true;
        return loadView().then(function () {
          settled(true);
          say(summary.truncated ? "truncated" : null);
          map.on("moveend", function () {
            loadView().catch(function () {
              say("failed");
            });
          });
          window.setInterval(refreshCases, REFRESH_MS);
        });
      });
    })
    .catch(function () {
      say("failed");
    });
})();
