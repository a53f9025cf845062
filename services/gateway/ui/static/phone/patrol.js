// The patrol (巡查) recorder: the phone makes the patrol's id itself, so that reports and
// visits made offline during it can name it; the GPS track is kept on the phone and
// queued in pieces (each piece its own item with its own Idempotency-Key).
import * as outbox from "./outbox.js";
import { metres, toPoint } from "./places.js";

const MIN_SECONDS = 5; // a point every few seconds…
const MIN_METRES = 20; // …or every few tens of metres, whichever comes first
const PIECE_POINTS = 20; // points per queued piece (the API takes up to 500)
const STATE = "patrol";

let watch = null;
let latest = null; // the last fix the watch delivered, and when
let listeners = [];

export async function current() {
  return (await outbox.readState(STATE)) || null;
}

export function onUpdate(listener) {
  listeners.push(listener);
}

async function publish(patrol) {
  for (const listener of listeners) listener(patrol);
}

export async function start(gridCode) {
  const patrol = {
    id: outbox.newId(),
    started_at: new Date().toISOString(),
    piece: 0,
    buffer: [],
    points: 0,
    distance: 0,
    last: null,
    track: [],
  };
  const body = { started_at: patrol.started_at };
  if (gridCode) body.grid_code = gridCode;
  await outbox.add("patrol", { patrolId: patrol.id, body });
  await outbox.writeState(STATE, patrol);
  follow();
  publish(patrol);
  return patrol;
}

// Recording resumes after a reload or a restart of the phone.
export async function resume() {
  if (await current()) follow();
}

function follow() {
  if (watch !== null || !navigator.geolocation) return;
  // The phone delivers fixes as they come (about every second while moving); `keep`
  // takes one every few seconds or tens of metres.
  const options = { enableHighAccuracy: true, maximumAge: 0, timeout: 20000 };
  watch = navigator.geolocation.watchPosition(
    (position) => {
      const point = toPoint(position);
      latest = { point, received: Date.now() };
      record(point);
    },
    () => {},
    options,
  );
}

// While a patrol runs, the watch's last fix (if recent) is where the worker is: a
// report or visit need not wait for another one.
export function lastFix(maxAgeMs = 30000) {
  return latest && Date.now() - latest.received <= maxAgeMs ? { ...latest.point } : null;
}

let queue = Promise.resolve();
function record(point) {
  queue = queue.then(() => keep(point)).catch(() => {});
  return queue;
}

async function keep(point) {
  const patrol = await current();
  if (!patrol) return;
  const last = patrol.last;
  if (last) {
    const seconds = (Date.parse(point.at) - Date.parse(last.at)) / 1000;
    const moved = metres(last, point);
    if (seconds < MIN_SECONDS && moved < MIN_METRES) return;
    if (seconds <= 0) point.at = new Date(Date.parse(last.at) + 1000).toISOString();
    patrol.distance += moved;
  }
  patrol.last = point;
  patrol.buffer.push(point);
  patrol.points += 1;
  patrol.track.push([point.lat, point.lon]);
  if (patrol.buffer.length >= PIECE_POINTS) await flush(patrol);
  await outbox.writeState(STATE, patrol);
  publish(patrol);
}

async function flush(patrol) {
  if (!patrol.buffer.length) return;
  await outbox.add("track", {
    patrolId: patrol.id,
    piece: patrol.piece,
    body: { points: patrol.buffer },
  });
  patrol.piece += 1;
  patrol.buffer = [];
}

export async function stop() {
  await queue;
  if (watch !== null) navigator.geolocation.clearWatch(watch);
  watch = null;
  latest = null;
  const patrol = await current();
  if (!patrol) return null;
  await flush(patrol);
  await outbox.add("finish", {
    patrolId: patrol.id,
    body: { ended_at: new Date().toISOString() },
  });
  await outbox.writeState(STATE, null);
  publish(null);
  return patrol;
}

// A point now (at start, and for a report or visit made during the patrol).
export function here(point) {
  return record(point);
}
