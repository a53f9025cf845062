// The app's screens: Today (worklists), Report, Verify, Visit, Patrol.
import * as outbox from "./outbox.js";
import * as patrols from "./patrol.js";
import { currentPosition, gridMap, locate } from "./places.js";
import { api, Offline, SessionEnded } from "./sync.js";

export const strings = JSON.parse(document.body.dataset.strings);
const me = document.body.dataset.user;
const $ = (id) => document.getElementById(id);

export function fill(template, values) {
  return template.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "text") node.textContent = value;
    else if (name === "class") node.className = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function showError(id, message) {
  const node = $(id);
  node.textContent = message || "";
  node.hidden = !message;
}

const timeFormat = new Intl.DateTimeFormat("zh-CN", {
  month: "2-digit",
  day: "2-digit",
  hour: "2-digit",
  minute: "2-digit",
  timeZone: "Asia/Shanghai",
});
const when = (iso) => (iso ? timeFormat.format(new Date(iso)) : "");

// ------------------------------------------------------------------ Today
// Each list is loaded through the API and kept, so the screen shows something offline.
async function load(key, path) {
  try {
    const answer = await api("GET", path);
    await outbox.writeState(`today:${key}`, answer);
    return { answer, fresh: true };
  } catch (error) {
    if (error instanceof SessionEnded) sessionEnded();
    else if (!(error instanceof Offline)) console.warn(key, error.message);
    return { answer: await outbox.readState(`today:${key}`), fresh: false };
  }
}

function list(id, rows) {
  const node = $(id);
  node.replaceChildren(...(rows.length ? rows : [element("li", { class: "empty", text: strings.nothing })]));
}

export async function showToday() {
  const [visits, verify, reports, patrolList] = await Promise.all([
    load("visits", "/visits/worklist"),
    load("verify", "/incidents/worklists/verification?limit=50"),
    load("reports", "/incidents?limit=100"),
    load("patrols", "/patrols?worker=me&limit=20"),
  ]);
  $("today-offline").hidden = [visits, verify, reports, patrolList].every((r) => r.fresh);
  const labels = strings.labels;
  const worklist = visits.answer || { due: [], overdue: [] };
  const missed = new Map(worklist.overdue.map((row) => [row.id, row.missing]));
  list(
    "visits-list",
    worklist.due.map((row) =>
      element(
        "li",
        { class: `card risk-${row.risk_level}` },
        element("span", { class: "badge", text: labels.risks[row.risk_level] || row.risk_level }),
        element("strong", { text: labels.groups[row.group] || row.group }),
        element("span", { class: "muted", text: row.resident_id }),
        element("span", { text: fill(strings.visits_done, row) }),
        missed.has(row.id) ? element("span", { class: "warn", text: fill(strings.overdue, { missing: missed.get(row.id) }) }) : null,
        element("a", { class: "button button-small", href: `#visit/${row.id}`, text: strings.visit_button }),
      ),
    ),
  );
  list(
    "verify-list",
    ((verify.answer && verify.answer.items) || []).map((row) =>
      element(
        "li",
        { class: "card" },
        element("strong", { text: row.description }),
        element("span", { class: "muted", text: fill(strings.case_at, { time: when(row.reported_at) }) }),
        element("a", { class: "button button-small", href: `#verify/${row.id}`, text: strings.verify_button }),
      ),
    ),
  );
  list(
    "reports-list",
    ((reports.answer && reports.answer.items) || [])
      .filter((row) => row.reporter_id === me)
      .map((row) =>
        element(
          "li",
          { class: "card" },
          element("strong", { text: row.description }),
          element("span", { class: `state state-${row.state}`, text: labels.states[row.state] || row.state }),
          element("span", { class: "muted", text: when(row.reported_at) }),
        ),
      ),
  );
  list(
    "patrols-list",
    ((patrolList.answer && patrolList.answer.items) || []).map((row) =>
      element(
        "li",
        { class: "card" },
        element("strong", { text: when(row.started_at) }),
        element("span", {
          text:
            row.state === "running"
              ? strings.patrol_running_state
              : fill(strings.patrol_summary, {
                  distance: Math.round(row.distance_m || 0),
                  minutes: Math.round((row.duration_s || 0) / 60),
                }),
        }),
        ...(row.flags || []).map((flag) =>
          element("span", { class: "warn", text: strings.patrol_flags[flag] || flag }),
        ),
      ),
    ),
  );
  await showOutbox();
}

// ------------------------------------------------------------------ waiting to send
export async function showOutbox() {
  const items = await outbox.all();
  const waiting = items.filter((item) => item.state === "waiting").length;
  document.body.dataset.waiting = String(items.length);
  $("outbox-banner").hidden = items.length === 0;
  $("outbox-count").textContent = fill(strings.waiting, { n: items.length });
  $("outbox-section").hidden = items.length === 0;
  $("outbox-list").replaceChildren(
    ...items.map((item) => {
      const row = element(
        "li",
        { class: item.state === "refused" ? "card refused" : "card", "data-kind": item.kind },
        element("strong", { text: strings.kinds[item.kind] || item.kind }),
        item.body && item.body.description ? element("span", { text: item.body.description }) : null,
        item.photos.length ? element("span", { class: "muted", text: fill(strings.photos_waiting, { n: item.photos.length }) }) : null,
      );
      if (item.state === "refused") {
        const reason = why(item.problem);
        row.append(element("p", { class: "field-error", role: "alert", text: fill(strings.refused, { reason }) }));
        const actions = element("div", { class: "actions" });
        if (item.kind === "incident") {
          const correct = element("button", { type: "button", class: "button button-small", text: strings.correct });
          correct.addEventListener("click", () => correctReport(item));
          actions.append(correct);
        } else {
          const retry = element("button", { type: "button", class: "button button-small", text: strings.retry });
          retry.addEventListener("click", async () => {
            item.state = "waiting";
            item.problem = null;
            item.key = outbox.newId();
            await outbox.save(item);
            document.dispatchEvent(new Event("gridwork:sync"));
          });
          actions.append(retry);
        }
        const discard = element("button", { type: "button", class: "button button-small button-danger", text: strings.discard });
        discard.addEventListener("click", async () => {
          if (window.confirm(strings.discard_confirm)) await outbox.remove(item);
        });
        actions.append(discard);
        row.append(actions);
      }
      return row;
    }),
  );
  return waiting;
}

// The service's reason, in the worker's words where the field says what went wrong.
function why(problem) {
  if (!problem) return "";
  if (problem.field === "location" && problem.status === 422) return strings.outside;
  return problem.detail || problem.title || String(problem.status);
}

// What the worker may need without a connection: the catalogue and the grid map.
export async function prefetch() {
  await catalogue();
}

export function sessionEnded() {
  $("session-ended").hidden = false;
}

// ------------------------------------------------------------------ Report
async function whereNow(maximumAge) {
  return patrols.lastFix() || currentPosition(maximumAge);
}

const report = { photos: [], after: [], point: null, map: null, pin: null, correcting: null };

async function catalogue() {
  const { answer } = await load("catalogue", "/catalogue");
  const select = $("report-category");
  if (!answer || select.options.length > 1) return;
  const groups = new Map();
  for (const entry of answer.entries) {
    const major = entry.code.slice(0, 2);
    if (!groups.has(major)) {
      groups.set(major, element("optgroup", { label: answer.categories[major] || major }));
    }
    groups.get(major).append(element("option", { value: entry.code, text: `${entry.code} ${entry.name}` }));
  }
  select.replaceChildren(element("option", { value: "", text: strings.choose_category }), ...groups.values());
}

function photoList(listId, photos, rerender) {
  $(listId).replaceChildren(
    ...photos.map((file, index) => {
      const url = URL.createObjectURL(file);
      const image = element("img", { src: url, alt: fill(strings.photo, { n: index + 1 }) });
      image.addEventListener("load", () => URL.revokeObjectURL(url));
      const remove = element("button", {
        type: "button",
        class: "photo-remove",
        "aria-label": fill(strings.remove_photo, { n: index + 1 }),
        text: "×",
      });
      remove.addEventListener("click", () => {
        photos.splice(index, 1);
        rerender();
      });
      return element("li", {}, image, remove);
    }),
  );
}

const renderReportPhotos = () => {
  photoList("report-photos", report.photos, renderReportPhotos);
  photoList("report-after-photos", report.after, renderReportPhotos);
};

async function placePin(point, centre) {
  report.point = point;
  const latLng = [point.lat, point.lon];
  if (!report.pin) {
    report.pin = L.marker(latLng, { draggable: true, keyboard: true, title: strings.grid }).addTo(report.map);
    report.pin.on("dragend", () => {
      const moved = report.pin.getLatLng();
      placePin({ lon: moved.lng, lat: moved.lat, at: new Date().toISOString() }, false);
    });
  } else {
    report.pin.setLatLng(latLng);
  }
  if (centre) {
    report.map.gridworkCentred = true;
    report.map.setView(latLng, 16);
  }
  const place = $("report-place");
  const found = await locate(point).catch(() => ({ unchecked: true }));
  if (report.point !== point) return; // moved again meanwhile
  place.classList.toggle("field-error", Boolean(found.outside));
  place.textContent = found.outside
    ? strings.outside
    : found.unchecked
      ? strings.unchecked
      : fill(strings.inside, { name: found.grid.name });
  report.outside = Boolean(found.outside);
}

async function locateMe() {
  $("report-place").textContent = strings.locating;
  try {
    await placePin(await whereNow(0), true);
  } catch {
    $("report-place").textContent = strings.no_location;
  }
}

export async function showReport() {
  if (!report.map) {
    report.map = gridMap($("report-map"));
    $("report-locate").addEventListener("click", locateMe);
    $("report-photo-input").addEventListener("change", (event) => {
      report.photos.push(...event.target.files);
      event.target.value = "";
      renderReportPhotos();
    });
    $("report-after-input").addEventListener("change", (event) => {
      report.after.splice(0, report.after.length, ...event.target.files);
      event.target.value = "";
      renderReportPhotos();
    });
    $("report-on-spot").addEventListener("change", (event) => {
      $("report-after").hidden = !event.target.checked;
    });
    $("report-form").addEventListener("submit", submitReport);
  }
  report.map.invalidateSize();
  $("report-patrol").hidden = !(await patrols.current());
  catalogue();
  if (!report.point) locateMe();
}

async function submitReport(event) {
  event.preventDefault();
  const category = $("report-category").value;
  const description = $("report-description").value.trim();
  const onSpot = $("report-on-spot").checked;
  showError("report-category-error", category ? "" : strings.need_category);
  showError("report-description-error", description ? "" : strings.need_description);
  showError("report-after-error", onSpot && !report.after.length ? strings.need_after : "");
  if (!report.point) $("report-place").textContent = strings.need_location;
  if (!category || !description || !report.point || report.outside || (onSpot && !report.after.length)) {
    const first = document.querySelector("#report-form .field-error:not([hidden])");
    if (first) first.previousElementSibling?.focus?.();
    return;
  }
  const running = await patrols.current();
  const body = {
    category,
    description,
    location: [report.point.lon, report.point.lat],
    resolved_on_spot: onSpot,
  };
  if (running) {
    body.patrol_id = running.id;
    await patrols.here(report.point);
  }
  const photos = [];
  for (const file of report.photos) photos.push(await outbox.keepPhoto(file, "incident_report"));
  if (onSpot) for (const file of report.after) photos.push(await outbox.keepPhoto(file, "feedback"));
  if (report.correcting) {
    // A corrected report is a new request: a new key, the photos it still has.
    const item = report.correcting;
    for (const photo of item.photos) await outbox.dropPhoto(photo.blob);
    Object.assign(item, { body, photos, state: "waiting", problem: null, key: outbox.newId(), incidentId: null });
    await outbox.save(item);
    report.correcting = null;
    showError("report-refused", "");
  } else {
    await outbox.add("incident", { body, photos });
  }
  $("report-form").reset();
  $("report-after").hidden = true;
  report.photos.length = 0;
  report.after.length = 0;
  renderReportPhotos();
  await showOutbox();
  document.dispatchEvent(new Event("gridwork:sync"));
  location.hash = "#today";
}

async function correctReport(item) {
  location.hash = "#report";
  await showReport();
  report.correcting = item;
  $("report-category").value = item.body.category;
  $("report-description").value = item.body.description;
  $("report-on-spot").checked = Boolean(item.body.resolved_on_spot);
  $("report-after").hidden = !item.body.resolved_on_spot;
  report.photos.length = 0;
  report.after.length = 0;
  for (const photo of item.photos) {
    const blob = await outbox.photoBlob(photo.blob);
    if (blob) (photo.purpose === "feedback" ? report.after : report.photos).push(blob);
  }
  renderReportPhotos();
  showError("report-refused", fill(strings.refused, { reason: why(item.problem) }));
  const [lon, lat] = item.body.location;
  await placePin({ lon, lat, at: new Date().toISOString() }, true);
}

// ------------------------------------------------------------------ Verify
const verification = { caseId: null, version: null, photos: [] };

async function mediaLinks(listId, rows) {
  const images = [];
  for (const [index, media] of rows.entries()) {
    try {
      const link = await api("GET", `/media/${media.id}/link?variant=original`);
      images.push(element("li", {}, element("img", { src: link.url, alt: fill(strings.photo, { n: index + 1 }) })));
    } catch {
      // a photo that cannot be shown now does not hold the screen up
    }
  }
  $(listId).replaceChildren(...images);
}

export async function showVerify(caseId) {
  if (!verification.bound) {
    verification.bound = true;
    $("verify-pass").addEventListener("click", () => submitVerify(true));
    $("verify-fail").addEventListener("click", () => submitVerify(false));
    $("verify-photo-input").addEventListener("change", (event) => {
      verification.photos.splice(0, verification.photos.length, ...event.target.files);
      event.target.value = "";
      photoList("verify-photos", verification.photos, () => photoList("verify-photos", verification.photos, () => {}));
    });
  }
  verification.caseId = caseId;
  verification.photos.length = 0;
  $("verify-photos").replaceChildren();
  $("verify-reason").value = "";
  showError("verify-reason-error", "");
  const incident = await api("GET", `/incidents/${caseId}`);
  verification.version = incident.version;
  $("verify-case").replaceChildren(
    element("p", {}, element("strong", { text: incident.description })),
    element("p", { class: "muted", text: fill(strings.case_at, { time: when(incident.reported_at) }) }),
    incident.result ? element("p", { text: incident.result }) : null,
  );
  const pairs = await api("GET", `/incidents/${caseId}/media`);
  await Promise.all([mediaLinks("verify-before", pairs.before), mediaLinks("verify-after", pairs.after)]);
}

async function submitVerify(passed) {
  const reason = $("verify-reason").value.trim();
  if (!passed && !reason) {
    showError("verify-reason-error", strings.need_reason);
    $("verify-reason").focus();
    return;
  }
  const photos = [];
  if (!passed) for (const file of verification.photos) photos.push(await outbox.keepPhoto(file, "verification"));
  await outbox.add("verify", {
    caseId: verification.caseId,
    body: { expected_version: verification.version, passed, comment: passed ? "" : reason },
    photos,
  });
  await showOutbox();
  document.dispatchEvent(new Event("gridwork:sync"));
  location.hash = "#today";
}

// ------------------------------------------------------------------ Visit
const visit = { membershipId: null, point: null };

export async function showVisit(membershipId) {
  if (!visit.bound) {
    visit.bound = true;
    $("visit-form").addEventListener("submit", submitVisit);
  }
  visit.membershipId = membershipId;
  visit.point = null;
  const worklist = (await outbox.readState("today:visits")) || { due: [] };
  const member = worklist.due.find((row) => row.id === membershipId);
  const labels = strings.labels;
  $("visit-member").textContent = member
    ? `${labels.groups[member.group] || member.group} · ${labels.risks[member.risk_level] || member.risk_level} · ${member.resident_id}`
    : membershipId;
  $("visit-patrol").hidden = !(await patrols.current());
  $("visit-place").textContent = strings.locating;
  try {
    visit.point = await whereNow();
    $("visit-place").textContent = fill(strings.location_at, {
      lat: visit.point.lat.toFixed(5),
      lon: visit.point.lon.toFixed(5),
      acc: Math.round(visit.point.accuracy_m || 0),
    });
  } catch {
    $("visit-place").textContent = strings.no_location;
  }
}

async function submitVisit(event) {
  event.preventDefault();
  if (!visit.point) {
    $("visit-place").textContent = strings.need_location;
    return;
  }
  const running = await patrols.current();
  const id = outbox.newId();
  const body = {
    membership_id: visit.membershipId,
    at: new Date().toISOString(),
    location: { type: "Point", coordinates: [visit.point.lon, visit.point.lat] },
    notes: $("visit-notes").value.trim() || undefined,
    visit_id: id,
  };
  if (running) {
    body.patrol_id = running.id;
    await patrols.here(visit.point);
  }
  await outbox.add("visit", { body });
  $("visit-form").reset();
  await showOutbox();
  document.dispatchEvent(new Event("gridwork:sync"));
  location.hash = "#today";
}

// ------------------------------------------------------------------ Patrol
let patrolMap = null;
let patrolLine = null;

function drawPatrol(patrol) {
  $("patrol-start").hidden = Boolean(patrol);
  $("patrol-stop").hidden = !patrol;
  $("patrol-state").textContent = patrol
    ? fill(strings.patrol_running, { time: when(patrol.started_at) })
    : strings.patrol_idle;
  $("patrol-points").textContent = patrol ? patrol.points : 0;
  $("patrol-distance").textContent = fill(strings.metres, { n: patrol ? Math.round(patrol.distance) : 0 });
  if (patrolMap && patrol && patrol.track.length) {
    if (!patrolLine) patrolLine = L.polyline([], { color: "#c0392b", weight: 4 }).addTo(patrolMap);
    patrolLine.setLatLngs(patrol.track);
    patrolMap.gridworkCentred = true;
    patrolMap.setView(patrol.track[patrol.track.length - 1], 16);
  }
}

export async function showPatrol() {
  if (!patrolMap) {
    patrolMap = gridMap($("patrol-map"));
    patrols.onUpdate(drawPatrol);
    $("patrol-start").addEventListener("click", async () => {
      const started = await patrols.start(null);
      currentPosition().then((point) => patrols.here(point)).catch(() => {});
      drawPatrol(started);
      document.dispatchEvent(new Event("gridwork:sync"));
    });
    $("patrol-stop").addEventListener("click", async () => {
      await patrols.stop();
      if (patrolLine) patrolLine.setLatLngs([]);
      document.dispatchEvent(new Event("gridwork:sync"));
    });
  }
  patrolMap.invalidateSize();
  drawPatrol(await patrols.current());
}
