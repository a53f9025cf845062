// The phone app's start: the service worker (the shell offline), the screens by the
// address's #hash, and sending what waits whenever the connection may be back.
import * as outbox from "./outbox.js";
import * as patrols from "./patrol.js";
import { grids } from "./places.js";
import * as screens from "./screens.js";
import { syncAll } from "./sync.js";

const SCREENS = {
  today: () => screens.showToday(),
  report: () => screens.showReport(),
  patrol: () => screens.showPatrol(),
  verify: (id) => screens.showVerify(id),
  visit: (id) => screens.showVisit(id),
};
const RETRY_MS = 20000;

async function route() {
  const [name, argument] = (location.hash.slice(1) || "today").split("/");
  const screen = SCREENS[name] ? name : "today";
  for (const section of document.querySelectorAll(".screen")) {
    section.hidden = section.id !== `screen-${screen}`;
  }
  for (const tab of document.querySelectorAll(".tabs a")) {
    if (tab.dataset.screen === screen) tab.setAttribute("aria-current", "page");
    else tab.removeAttribute("aria-current");
  }
  document.body.dataset.screen = screen;
  window.scrollTo(0, 0);
  try {
    await SCREENS[screen](argument);
  } finally {
    document.body.dataset.ready = screen;
  }
}

let syncing = false;
async function sync() {
  if (syncing) return;
  syncing = true;
  document.body.dataset.syncing = "1";
  try {
    const ended = await syncAll();
    if (ended === "session") screens.sessionEnded();
    if (ended === "done" && document.body.dataset.screen === "today") await screens.showToday();
  } finally {
    syncing = false;
    delete document.body.dataset.syncing;
    await screens.showOutbox();
  }
}

outbox.onChange(() => screens.showOutbox());
document.addEventListener("gridwork:sync", sync);
window.addEventListener("online", sync);
window.addEventListener("hashchange", route);
document.getElementById("send-now").addEventListener("click", sync);
setInterval(sync, RETRY_MS);

if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register(document.body.dataset.sw, { scope: "./" }).catch((error) => {
    console.warn("service worker", error);
  });
}

patrols.resume();
route()
  .then(() => Promise.all([screens.prefetch(), grids()]))
  .then(sync);
