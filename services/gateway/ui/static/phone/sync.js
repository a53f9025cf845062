// Sending what the phone kept, in the order it was made, through the documented /api/v1
// routes with the browser session (its CSRF token in a header) and each item's own
// Idempotency-Key. A network failure stops the round (everything stays for the next);
// a refusal (a 4xx problem) is kept on the item with its reason for the worker to
// correct or discard; photos are deleted from the phone only once their upload is
// confirmed.
import * as outbox from "./outbox.js";

const csrf = document.querySelector('meta[name="csrf-token"]').content;
const API = "/api/v1";

export class Offline extends Error {}
export class SessionEnded extends Error {}
export class Refused extends Error {
  constructor(problem) {
    super(problem.detail || problem.title || String(problem.status));
    this.problem = problem;
  }
}

// Answers that a later retry may cure: stop the round, keep the item waiting.
const RETRY_LATER = new Set([408, 425, 429, 500, 502, 503, 504]);

export async function api(method, path, body, key, extraHeaders = {}) {
  const headers = { "X-CSRFToken": csrf, Accept: "application/json", ...extraHeaders };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (key) headers["Idempotency-Key"] = key;
  let response;
  try {
    response = await fetch(API + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
  } catch (error) {
    throw new Offline(String(error));
  }
  if (response.ok) return response.status === 204 ? null : response.json();
  const problem = await response.json().catch(() => ({ status: response.status }));
  problem.status = response.status;
  if (response.status === 401) throw new SessionEnded(problem.detail);
  // 409 with Retry-After: the first request with this key is still running.
  if (RETRY_LATER.has(response.status) || response.headers.get("Retry-After")) {
    throw new Offline(problem.detail || String(response.status));
  }
  throw new Refused(problem);
}

async function sendPhoto(item, photo, owner) {
  if (photo.done) return;
  if (!photo.mediaId || !photo.uploadUrl) {
    const slot = await api(
      "POST",
      "/media/uploads",
      { content_type: photo.type, size: photo.size, purpose: photo.purpose, owner },
      photo.slotKey,
    );
    Object.assign(photo, {
      mediaId: slot.media_id,
      uploadUrl: slot.upload_url,
      uploadHeaders: slot.headers,
    });
    await outbox.save(item);
  }
  if (!photo.uploaded) {
    const blob = await outbox.photoBlob(photo.blob);
    let response;
    try {
      response = await fetch(photo.uploadUrl, {
        method: "PUT",
        headers: photo.uploadHeaders,
        body: blob,
      });
    } catch (error) {
      throw new Offline(String(error));
    }
    if (!response.ok) {
      // An expired slot (kept offline too long): ask for a new one next round.
      photo.slotKey = outbox.newId();
      photo.uploadUrl = null;
      await outbox.save(item);
      throw new Offline(`upload ${response.status}`);
    }
    photo.uploaded = true;
    await outbox.save(item);
  }
  await api("POST", `/media/${photo.mediaId}/confirm`, undefined, photo.confirmKey);
  photo.done = true;
  await outbox.dropPhoto(photo.blob);
  await outbox.save(item);
}

async function sendIncident(item) {
  if (!item.incidentId) {
    // The phone shows no duplicates after a report: the case alone, not searched for them.
    const result = await api("POST", "/incidents", item.body, item.key, {
      Prefer: "return=minimal",
    });
    item.incidentId = result.incident.id;
    await outbox.save(item);
  }
  for (const photo of item.photos) {
    await sendPhoto(item, photo, { kind: "incident", id: item.incidentId });
  }
}

async function sendVerification(item) {
  for (const photo of item.photos) {
    await sendPhoto(item, photo, { kind: "incident", id: item.caseId });
  }
  const body = { ...item.body, media_ids: item.photos.map((photo) => photo.mediaId) };
  await api("POST", `/incidents/${item.caseId}/verify`, body, item.key);
}

const SENDERS = {
  incident: sendIncident,
  verify: sendVerification,
  visit: (item) => api("POST", "/visits", item.body, item.key),
  patrol: (item) => api("PUT", `/patrols/${item.patrolId}`, item.body, item.key),
  track: (item) =>
    api("PUT", `/patrols/${item.patrolId}/track/${item.piece}`, item.body, item.key),
  finish: (item) => api("POST", `/patrols/${item.patrolId}/finish`, item.body, item.key),
};

let running = null;

// One round at a time; the answer says how it ended ("done", "offline", "session").
export function syncAll() {
  if (!running) running = round().finally(() => (running = null));
  return running;
}

async function round() {
  for (const item of await outbox.all()) {
    if (item.state !== "waiting") continue;
    try {
      await SENDERS[item.kind](item);
      await outbox.remove(item);
    } catch (error) {
      if (error instanceof Refused) {
        item.state = "refused";
        item.problem = error.problem;
        await outbox.save(item);
      } else if (error instanceof SessionEnded) {
        return "session";
      } else if (error instanceof Offline) {
        return "offline";
      } else {
        throw error;
      }
    }
  }
  return "done";
}
