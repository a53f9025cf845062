// The phone app's service worker: the app shell offline. Written by the gateway
// (services/gateway/ui/phone.py), which lists the shell's files and its version.
const VERSION = {{ version | tojson }};
const CACHE = `gridwork-app-${VERSION}`;
const SHELL = {{ files | tojson }};
const PAGE = SHELL[0];

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(SHELL))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) =>
        Promise.all(
          names.filter((name) => name.startsWith("gridwork-app-") && name !== CACHE).map((name) => caches.delete(name)),
        ),
      )
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  if (request.mode === "navigate" && url.pathname === PAGE) {
    // The page from the network while there is one (a fresh session and CSRF token;
    // the sign-in page when the session has ended), else the copy kept.
    event.respondWith(
      fetch(request)
        .then((response) => {
          if (response.ok && !response.redirected) {
            const copy = response.clone();
            caches.open(CACHE).then((cache) => cache.put(PAGE, copy));
          }
          return response;
        })
        .catch(() => caches.match(PAGE)),
    );
    return;
  }
  if (SHELL.includes(url.pathname) || url.pathname.startsWith("/ui/vendor/leaflet/images/")) {
    event.respondWith(
      caches.match(request, { ignoreSearch: true }).then(
        (kept) =>
          kept ||
          fetch(request).then((response) => {
            if (response.ok) {
              const copy = response.clone();
              caches.open(CACHE).then((cache) => cache.put(request, copy));
            }
            return response;
          }),
      ),
    );
  }
});
