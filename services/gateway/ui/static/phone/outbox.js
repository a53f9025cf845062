// What the phone keeps until the server has it (IndexedDB, so closing the app or the
// phone restarting loses nothing): the items to send, their photos as Blobs, and the
// app's small state (the running patrol, the lists last loaded).
const DB_NAME = "gridwork-phone";
const DB_VERSION = 1;
let opened = null;

function database() {
  if (!opened) {
    opened = new Promise((resolve, reject) => {
      const request = indexedDB.open(DB_NAME, DB_VERSION);
      request.onupgradeneeded = () => {
        const db = request.result;
        db.createObjectStore("items", { keyPath: "id" }).createIndex("seq", "seq");
        db.createObjectStore("blobs", { keyPath: "id" });
        db.createObjectStore("state");
      };
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  }
  return opened;
}

function done(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function store(name, mode = "readonly") {
  return (await database()).transaction(name, mode).objectStore(name);
}

export function newId() {
  return crypto.randomUUID();
}

let lastSeq = 0;
function nextSeq() {
  // Creation order is sending order (a patrol before the reports made during it).
  lastSeq = Math.max(Date.now() * 1000, lastSeq + 1);
  return lastSeq;
}

export async function keepPhoto(file, purpose) {
  const id = newId();
  await done((await store("blobs", "readwrite")).put({ id, blob: file }));
  return {
    blob: id,
    purpose,
    type: file.type || "image/jpeg",
    size: file.size,
    slotKey: newId(),
    confirmKey: newId(),
    mediaId: null,
    uploaded: false,
    done: false,
  };
}

export async function photoBlob(id) {
  const row = await done((await store("blobs")).get(id));
  return row ? row.blob : null;
}

export async function dropPhoto(id) {
  await done((await store("blobs", "readwrite")).delete(id));
}

export async function add(kind, fields) {
  const item = {
    id: newId(),
    seq: nextSeq(),
    kind,
    key: newId(), // the Idempotency-Key, kept with the item: a retry never duplicates
    state: "waiting",
    problem: null,
    photos: [],
    created: new Date().toISOString(),
    ...fields,
  };
  await done((await store("items", "readwrite")).put(item));
  changed();
  return item;
}

export async function save(item) {
  await done((await store("items", "readwrite")).put(item));
  changed();
}

export async function remove(item) {
  for (const photo of item.photos || []) {
    if (!photo.done) await dropPhoto(photo.blob);
  }
  await done((await store("items", "readwrite")).delete(item.id));
  changed();
}

export async function all() {
  return done((await store("items")).index("seq").getAll());
}

export async function get(id) {
  return done((await store("items")).get(id));
}

export async function readState(key) {
  return done((await store("state")).get(key));
}

export async function writeState(key, value) {
  await done((await store("state", "readwrite")).put(value, key));
}

const listeners = new Set();
export function onChange(listener) {
  listeners.add(listener);
}
function changed() {
  for (const listener of listeners) listener();
}
