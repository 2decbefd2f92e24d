/* stagelink service worker, served at /m/sw.js (scope /m/).
 *
 * Keeps the rep's last opened deal pages and the page's assets so a page opens without a
 * network. Pages: network first (fresh recommendations), the kept copy when the network
 * fails, answers 5xx or is slower than a few seconds (3G in a car park). A 403/404 answer
 * drops the kept copy (link revoked, deal deleted). Usage posts are never touched: the
 * page queues them itself. The server fills in VERSION and ASSETS when serving this file,
 * so a new release is a new worker.
 */
"use strict";

const VERSION = "__VERSION__";
const ASSETS = ["__ASSETS__"];
const STATIC = `stagelink-static-${VERSION}`;
const PAGES = "stagelink-pages-v1";
const MAX_PAGES = 20;
const NETWORK_TIMEOUT_MS = 4000;

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(STATIC)
      .then((cache) => cache.addAll(ASSETS))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      for (const key of await caches.keys()) {
        if (key.startsWith("stagelink-static-") && key !== STATIC) await caches.delete(key);
      }
      await self.clients.claim();
    })(),
  );
});

// Pages are kept by path: a fresh link (new token) to a deal replaces the older copy.
const pageKey = (url) => {
  const parsed = new URL(url, self.location.href);
  return parsed.origin + parsed.pathname;
};

async function keep(url, response) {
  const cache = await caches.open(PAGES);
  const key = pageKey(url);
  await cache.delete(key); // re-added last: the cache lists keys oldest first
  await cache.put(key, response);
  const keys = await cache.keys();
  for (const old of keys.slice(0, Math.max(0, keys.length - MAX_PAGES))) await cache.delete(old);
}

function offlinePage() {
  const html =
    '<!doctype html><html lang="en"><meta charset="utf-8">' +
    '<meta name="viewport" content="width=device-width, initial-scale=1">' +
    "<title>Offline · stagelink</title>" +
    '<main style="font:16px system-ui;padding:32px"><h1>You are offline</h1>' +
    "<p>This deal has not been opened on this device yet, so there is no saved copy. " +
    "Try again when you have a connection.</p></main>";
  return new Response(html, {
    status: 503,
    headers: { "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store" },
  });
}

async function page(event) {
  const request = event.request;
  const cached = await caches.match(pageKey(request.url), { cacheName: PAGES });
  const network = fetch(request).then(async (response) => {
    const html = (response.headers.get("Content-Type") || "").startsWith("text/html");
    if (response.status === 200 && html) {
      await keep(request.url, response.clone());
    } else if ([403, 404, 410].includes(response.status)) {
      await (await caches.open(PAGES)).delete(pageKey(request.url));
    } else if (response.status >= 500 && cached) {
      throw new Error(`server answered ${response.status}`);
    }
    return response;
  });
  if (!cached) return network.catch(() => offlinePage());
  event.waitUntil(network.catch(() => undefined)); // a late answer still refreshes the copy
  const slow = new Promise((resolve) => setTimeout(() => resolve(cached), NETWORK_TIMEOUT_MS));
  return Promise.race([network, slow]).catch(() => cached);
}

async function asset(request) {
  const cached = await caches.match(request);
  if (cached) return cached;
  try {
    const response = await fetch(request);
    if (response.ok) await (await caches.open(STATIC)).put(request, response.clone());
    return response;
  } catch (error) {
    // Offline, and a page kept before an update asks for the previous release's file:
    // this release's file of the same name stands in.
    const name = new URL(request.url).pathname.split("/").pop();
    const current = ASSETS.find((url) => url.startsWith("/m/static.") && url.endsWith(`/${name}`));
    const fallback = current && (await caches.match(current, { cacheName: STATIC }));
    if (fallback) return fallback;
    throw error;
  }
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return; // usage posts go straight to the network
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (ASSETS.includes(url.pathname) || url.pathname.startsWith("/m/static.")) {
    event.respondWith(asset(request));
  } else if (request.mode === "navigate" && url.pathname.startsWith("/m/")) {
    event.respondWith(page(event));
  }
});

// The page's first load happened before this worker existed: it asks us to keep it.
self.addEventListener("message", (event) => {
  const data = event.data || {};
  const port = event.ports && event.ports[0];
  if (data.type !== "keep" || typeof data.url !== "string") return;
  const url = new URL(data.url, self.location.href);
  if (url.origin !== self.location.origin || !url.pathname.startsWith("/m/")) return;
  event.waitUntil(
    fetch(url.href, { credentials: "same-origin" })
      .then(async (response) => {
        const ok = response.status === 200;
        if (ok) await keep(url.href, response);
        if (port) port.postMessage({ kept: ok });
      })
      .catch(() => port && port.postMessage({ kept: false })),
  );
});

// Stage-change nudges (Web Push): show the notification; a tap opens or focuses the deal's
// page. Only same-origin /m/ URLs are opened, whatever the payload says.
self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch (error) {
    data = {};
  }
  event.waitUntil(
    self.registration.showNotification(data.title || "stagelink", {
      body: data.body || "",
      tag: data.tag || "stagelink",
      data: { url: data.url || "/m/" },
    }),
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const wanted = (event.notification.data && event.notification.data.url) || "/m/";
  const target = new URL(wanted, self.location.href);
  if (target.origin !== self.location.origin || !target.pathname.startsWith("/m/")) return;
  event.waitUntil(
    self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((windows) => {
      for (const client of windows) {
        if (client.url === target.href && "focus" in client) return client.focus();
      }
      return self.clients.openWindow(target.href);
    }),
  );
});
