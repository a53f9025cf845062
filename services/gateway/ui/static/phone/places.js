// Where the worker is: the phone's GPS, the grid map with a draggable pin, and the
// county's answer to "which grid is this point in" (/api/v1/locate).
import * as outbox from "./outbox.js";
import { api, Offline, Refused } from "./sync.js";

export function currentPosition(maximumAge = 10000, timeout = 15000) {
  return new Promise((resolve, reject) => {
    if (!navigator.geolocation) return reject(new Error("no geolocation"));
    navigator.geolocation.getCurrentPosition(
      (position) => resolve(toPoint(position)),
      reject,
      { enableHighAccuracy: true, timeout, maximumAge },
    );
  });
}

export function toPoint(position) {
  return {
    lon: position.coords.longitude,
    lat: position.coords.latitude,
    at: new Date(position.timestamp).toISOString(),
    accuracy_m: position.coords.accuracy,
  };
}

// Metres between two points (haversine), for the patrol's running distance.
export function metres(a, b) {
  const rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad;
  const dLon = (b.lon - a.lon) * rad;
  const h =
    Math.sin(dLat / 2) ** 2 +
    Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * 6371008.8 * Math.asin(Math.sqrt(h));
}

// The caller's grids as GeoJSON (the command centre's map shapes), kept for offline use.
export async function grids() {
  const url = document.body.dataset.grids + "?zoom=15";
  try {
    const response = await fetch(url, { credentials: "same-origin" });
    if (response.ok) {
      const shapes = await response.json();
      await outbox.writeState("grids", shapes);
      return shapes;
    }
  } catch {
    // offline: the copy kept last time
  }
  return (await outbox.readState("grids")) || null;
}

// {grid} inside the county, {outside: true}, or {unchecked: true} when offline.
export async function locate(point) {
  try {
    const found = await api("GET", `/locate?lon=${point.lon}&lat=${point.lat}`);
    return { grid: found.grid };
  } catch (error) {
    if (error instanceof Refused && error.problem.status === 422) return { outside: true };
    if (error instanceof Offline) return { unchecked: true };
    throw error;
  }
}

export function gridMap(element) {
  const map = L.map(element, { zoomControl: true, attributionControl: false });
  map.setView([30, 114], 13);
  grids().then((shapes) => {
    if (!shapes || !shapes.features.length) return;
    const layer = L.geoJSON(shapes, {
      style: { color: "#1d4f91", weight: 1, fillOpacity: 0.05 },
    }).addTo(map);
    if (!map.gridworkCentred) map.fitBounds(layer.getBounds());
  });
  return map;
}
