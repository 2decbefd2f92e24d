/* stagelink rep page: durable usage queue, share, present mode, offline support.
 *
 * Plain JS, no dependencies. Every tap is written to the queue (localStorage) BEFORE
 * anything is sent; a flush posts the queue to /api/v1/usage with the page's sls_ bearer
 * and removes only events the server answered (accepted, held, rejected or duplicate).
 * Network errors, 429 and 5xx keep them for the next flush: on load, when the browser
 * comes back online, when the page becomes visible again and every 30 s. The server is
 * idempotent by client_event_id, so a batch resent after a lost answer is stored once.
 */
(() => {
  "use strict";

  const QUEUE_KEY = "stagelink.usage.v1";
  const RECENT_KEY = "stagelink.recent.v1";
  const SESSIONS_KEY = "stagelink.sessions.v1";
  const USAGE_URL = "/api/v1/usage";
  const BATCH = 100; // keepalive requests may carry 64 KB at most
  const MAX_QUEUE = 5000;
  const FLUSH_EVERY_MS = 30000;

  const $ = (selector) => document.querySelector(selector);
  const dataNode = document.getElementById("page-data");
  const page = dataNode ? JSON.parse(dataNode.textContent) : null;

  // -- storage: localStorage, or memory when the browser blocks it (some embeds) --------
  const store = (() => {
    try {
      const probe = "stagelink.probe";
      window.localStorage.setItem(probe, "1");
      window.localStorage.removeItem(probe);
      return { durable: true, area: window.localStorage };
    } catch (error) {
      const memory = new Map();
      const area = {
        getItem: (key) => (memory.has(key) ? memory.get(key) : null),
        setItem: (key, value) => memory.set(key, String(value)),
      };
      return { durable: false, area };
    }
  })();

  function read(key, fallback) {
    try {
      const value = JSON.parse(store.area.getItem(key));
      return value === null ? fallback : value;
    } catch (error) {
      return fallback;
    }
  }

  function write(key, value) {
    try {
      store.area.setItem(key, JSON.stringify(value));
      return true;
    } catch (error) {
      return false; // quota: the caller reports it
    }
  }

  const loadQueue = () => {
    const items = read(QUEUE_KEY, []);
    return Array.isArray(items) ? items : [];
  };

  // -- the queue ---------------------------------------------------------------------------
  let problem = ""; // why something could not be recorded, shown until the next good flush
  let dropped = 0;

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    // Pages served over plain http (a LAN demo) have no randomUUID: build a v4 by hand.
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  /** Queue one usage event for this page's deal; returns its client_event_id. */
  function record(action, contentId, extra) {
    if (!page) return null;
    const id = uuid();
    const event = {
      client_event_id: id,
      connection: page.connection,
      opportunity_id: page.opportunity_id,
      content_id: contentId,
      action,
      occurred_at: new Date().toISOString(),
      channel: "mobile_page",
      ...extra,
    };
    const items = loadQueue();
    items.push({ id, rep: page.rep, connection: page.connection, token: page.session_token, event });
    while (items.length > MAX_QUEUE) {
      items.shift();
      dropped += 1;
    }
    if (!write(QUEUE_KEY, items)) problem = "this device's storage is full";
    render();
    return id;
  }

  function forget(ids) {
    if (!ids.size) return;
    // Re-read: taps made while the request was in flight must stay.
    write(QUEUE_KEY, loadQueue().filter((item) => !ids.has(item.id)));
  }

  // The newest session a page of this rep and connection gave us: a later page load may
  // carry a fresh bearer for taps queued under one that has expired since.
  function bearerFor(item) {
    const sessions = read(SESSIONS_KEY, {});
    return sessions[`${item.rep}|${item.connection}`] || item.token;
  }

  let running = null;
  let again = false;

  /** Send what is queued; resolves when done (never rejects). One flush at a time, also
   *  across tabs where the browser has Web Locks; a flush asked for meanwhile runs next. */
  function flush() {
    if (running) {
      again = true;
      return running;
    }
    const drain = () => send({});
    const started = navigator.locks ? navigator.locks.request("stagelink-usage", drain) : drain();
    running = started
      .catch(() => undefined)
      .finally(() => {
        running = null;
        render();
        if (again) {
          again = false;
          flush();
        }
      });
    return running;
  }

  async function send(options) {
    const groups = new Map();
    for (const item of loadQueue()) {
      const token = bearerFor(item);
      if (!groups.has(token)) groups.set(token, []);
      groups.get(token).push(item);
    }
    let clean = true;
    for (const [token, items] of groups) {
      for (let start = 0; start < items.length; start += BATCH) {
        const outcome = await post(token, items.slice(start, start + BATCH), options);
        if (outcome === "later") return; // offline or the server is struggling
        if (outcome !== "ok") clean = false;
        if (outcome === "refused") break; // this bearer is refused: next group
      }
    }
    if (clean) problem = "";
  }

  async function post(token, items, options) {
    let response;
    try {
      response = await fetch(USAGE_URL, {
        method: "POST",
        credentials: "omit",
        keepalive: Boolean(options.keepalive),
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
        body: JSON.stringify({ events: items.map((item) => item.event) }),
      });
    } catch (error) {
      return "later";
    }
    const body = await response.json().catch(() => null);
    if (response.status === 200 && body && Array.isArray(body.results)) {
      const answered = new Set(body.results.map((result) => result.client_event_id));
      forget(answered);
      const refused = body.results.filter((result) => result.status === "rejected");
      if (refused.length) {
        problem = `${refused.length} not recorded: ${refused[0].reason || "refused"}`;
        return "partly";
      }
      return "ok";
    }
    if (response.status === 401 || response.status === 403) {
      problem = "this page's sign-in expired: open the deal from your CRM again to send them";
      return "refused";
    }
    if (response.status === 400 || response.status === 413 || response.status === 422) {
      // Refused as sent and never going to pass: drop the events the server named.
      const named = body && Array.isArray(body.errors) ? body.errors : [];
      const bad = new Set(
        named.filter((e) => items[e.index]).map((e) => items[e.index].id),
      );
      forget(bad);
      problem = `${bad.size || "some"} not recorded: ${(body && body.message) || response.status}`;
      return "refused";
    }
    return "later"; // 429, 5xx, a proxy's error page
  }

  // -- status line: "n pending", honestly ------------------------------------------------
  const statusNode = $("#sync");

  function render() {
    if (!statusNode) return;
    const pending = loadQueue().length;
    const online = navigator.onLine;
    let text;
    if (pending) {
      text = `${pending} pending`;
      text += online ? " · sending when the server answers" : " · offline, sent when you're back online";
    } else {
      text = online ? "All synced" : "Offline · nothing pending";
    }
    if (problem) text += ` · ${problem}`;
    if (dropped) text += ` · ${dropped} oldest dropped (queue full)`;
    if (!store.durable && pending) text += " · not saved on this device (storage blocked)";
    statusNode.textContent = text;
    statusNode.className = `sync${problem ? " problem" : pending ? " pending" : ""}`;
    statusNode.hidden = false;
  }

  // -- toast -----------------------------------------------------------------------------
  let toastTimer = 0;

  function toast(message) {
    const node = $("#toast");
    if (!node) return;
    node.textContent = message;
    node.classList.add("show");
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => node.classList.remove("show"), 4000);
  }

  // -- open and share ----------------------------------------------------------------------
  const titleOf = (card) => card.querySelector("h3").textContent.trim();

  function open(card, link) {
    // The page records the view itself (queued, so it counts offline too) and the link
    // goes to the content directly: its href is swapped for this one activation, so the
    // browser (or CRM webview) opens it as any link. Without JS, or with a middle click,
    // the link goes through /c/..., which records the view instead.
    record("viewed", card.dataset.content);
    const tracked = link.getAttribute("href");
    link.setAttribute("href", card.dataset.url);
    setTimeout(() => link.setAttribute("href", tracked), 0);
    flush();
  }

  async function copy(text) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch (error) {
      // Older webviews: the selection-based copy still works there.
      const field = document.createElement("textarea");
      field.value = text;
      field.setAttribute("readonly", "");
      field.style.position = "fixed";
      field.style.opacity = "0";
      document.body.append(field);
      field.select();
      let done = false;
      try {
        done = document.execCommand("copy");
      } catch (ignored) {
        done = false;
      }
      field.remove();
      return done;
    }
  }

  async function share(card) {
    const url = card.dataset.share;
    if (navigator.share) {
      try {
        await navigator.share({ title: titleOf(card), url });
        record("shared", card.dataset.content);
        flush();
        toast("Shared");
        return;
      } catch (error) {
        if (error && error.name === "AbortError") return; // the rep closed the sheet
      }
    }
    if (await copy(url)) {
      record("shared", card.dataset.content);
      flush();
      toast("Link copied. Paste it into a message or an e-mail.");
    } else {
      toast(`Could not copy. The link is ${url}`);
    }
  }

  // -- present mode ------------------------------------------------------------------------
  const overlay = $("#present");
  let showing = null; // {contentId, started, startedAt, opener, timer, fullscreen}

  const clock = (seconds) =>
    `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;

  // While presenting, the page behind neither scrolls nor takes focus.
  function setInert(value) {
    document.documentElement.classList.toggle("presenting", value);
    for (const node of document.querySelectorAll("body > :not(#present):not(#toast)")) {
      node.inert = value;
    }
  }

  function present(card, opener) {
    if (!overlay || showing) return;
    const url = card.dataset.url;
    $("#present-title").textContent = titleOf(card);
    $("#present-frame").src = url;
    $("#present-link").href = url;
    $("#present-timer").textContent = clock(0);
    const started = Date.now();
    showing = {
      contentId: card.dataset.content,
      started,
      startedAt: new Date(started).toISOString(),
      opener,
      fullscreen: false,
      timer: setInterval(() => {
        $("#present-timer").textContent = clock(Math.floor((Date.now() - started) / 1000));
      }, 1000),
    };
    overlay.hidden = false;
    setInert(true);
    const request = overlay.requestFullscreen || overlay.webkitRequestFullscreen;
    if (request) {
      // Phones without the Fullscreen API still get the full-viewport overlay.
      Promise.resolve(request.call(overlay)).catch(() => undefined);
    }
    $("#present-exit").focus();
  }

  function endPresent(options) {
    if (!showing) return;
    const ended = showing;
    showing = null;
    clearInterval(ended.timer);
    const seconds = Math.max(0, Math.round((Date.now() - ended.started) / 1000));
    record("presented", ended.contentId, {
      occurred_at: ended.startedAt,
      duration_seconds: seconds,
    });
    if (options && options.leaving) return; // the page is going away: nothing to restore
    flush();
    overlay.hidden = true;
    $("#present-frame").src = "about:blank";
    setInert(false);
    // Back to the button that started it; leaving full screen moves focus, so after that.
    const refocus = () => ended.opener && ended.opener.focus();
    if (document.fullscreenElement && document.exitFullscreen) {
      document.exitFullscreen().then(refocus, refocus);
    } else {
      refocus();
    }
    toast(`Presented for ${clock(seconds)}`);
  }

  document.addEventListener("fullscreenchange", () => {
    if (!showing) return;
    if (document.fullscreenElement === overlay) showing.fullscreen = true;
    else if (showing.fullscreen) endPresent(); // Esc or the system back gesture left it
  });

  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && showing) endPresent();
  });

  // -- wiring ------------------------------------------------------------------------------
  document.addEventListener("click", (event) => {
    const target = event.target.closest("[data-action], #present-exit");
    if (!target) return;
    if (target.id === "present-exit") {
      endPresent();
      return;
    }
    const card = target.closest(".card");
    if (!card) return;
    const action = target.dataset.action;
    if (action === "open") {
      open(card, target);
    } else if (action === "share") {
      share(card);
    } else if (action === "present") {
      present(card, target);
    }
  });

  for (const button of document.querySelectorAll("[data-action][hidden]")) button.hidden = false;

  window.addEventListener("online", () => flush());
  window.addEventListener("offline", render);
  window.addEventListener("storage", (event) => {
    if (event.key === QUEUE_KEY) render();
  });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") flush();
  });
  window.addEventListener("pagehide", () => {
    endPresent({ leaving: true });
    // Outside the lock: a flush still running would be cancelled with the page, and
    // keepalive requests outlive it. Overlap with it is answered as duplicates.
    if (loadQueue().length) send({ keepalive: true }).catch(() => undefined);
  });
  setInterval(() => {
    if (document.visibilityState === "visible" && loadQueue().length) flush();
  }, FLUSH_EVERY_MS);

  // -- this device's recent deals and sessions ----------------------------------------------
  if (page) {
    const sessions = read(SESSIONS_KEY, {});
    sessions[`${page.rep}|${page.connection}`] = page.session_token;
    write(SESSIONS_KEY, sessions);
    const key = `${page.connection}/${page.opportunity_id}`;
    const recent = read(RECENT_KEY, []).filter((entry) => entry && entry.key !== key);
    recent.unshift({ key, path: page.page_path, name: page.name, account: page.account });
    write(RECENT_KEY, recent.slice(0, 10));
  }

  const recentList = $("#recent");
  if (recentList) {
    const recent = read(RECENT_KEY, []);
    for (const entry of recent) {
      const item = document.createElement("li");
      const link = document.createElement("a");
      link.href = entry.path;
      link.textContent = [entry.name, entry.account].filter(Boolean).join(" · ") || entry.key;
      item.append(link);
      recentList.append(item);
    }
    $("#recent-empty").hidden = recent.length > 0;
  }

  // -- offline copy: the service worker keeps this page ---------------------------------------
  function keepOffline() {
    if (!("serviceWorker" in navigator) || !window.isSecureContext) return Promise.resolve(false);
    // A load served through the worker was kept by it already. Any other (the first
    // visit: no worker yet) is not, even once the new worker claims this page.
    const servedByWorker = Boolean(navigator.serviceWorker.controller);
    return navigator.serviceWorker
      .register("/m/sw.js", { scope: "/m/" })
      .then(() => navigator.serviceWorker.ready)
      .then((registration) => {
        if (servedByWorker) return true;
        return new Promise((resolve) => {
          const channel = new MessageChannel();
          channel.port1.onmessage = (message) => resolve(Boolean(message.data && message.data.kept));
          registration.active.postMessage({ type: "keep", url: location.href }, [channel.port2]);
          setTimeout(() => resolve(false), 15000);
        });
      })
      .catch(() => false);
  }

  // "Get notified" (stage-change nudges by Web Push). Shown only where the browser can
  // receive push and the server has a VAPID key; the subscription is stored for this rep
  // with the page's sls_ bearer. Other code may still replace the setup through
  // window.stagelink.notify(setup) or a window.stagelinkNotify set before this script.
  const PUSH_URL = "/api/v1/push/subscriptions";

  function urlBase64ToBytes(text) {
    const padded = (text + "===".slice((text.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
    const raw = atob(padded);
    return Uint8Array.from(raw, (c) => c.charCodeAt(0));
  }

  function setupPush(section, data) {
    const supported =
      "serviceWorker" in navigator && "PushManager" in window && window.isSecureContext;
    if (!supported || !data.session_token) return;
    const auth = { Authorization: "Bearer " + data.session_token };
    fetch("/api/v1/push/vapid-public-key")
      .then((response) => (response.ok ? response.json() : null))
      .then((key) => {
        if (!key || !key.public_key) return; // push is not configured on this server
        const button = document.createElement("button");
        button.type = "button";
        button.className = "btn";
        const status = document.createElement("p");
        status.setAttribute("role", "status");
        section.append(button, status);
        section.hidden = false;
        const show = (subscribed, message) => {
          button.textContent = subscribed ? "Stop stage-change alerts" : "Get notified of stage changes";
          button.dataset.subscribed = subscribed ? "1" : "";
          status.textContent = message || "";
        };
        navigator.serviceWorker.ready
          .then((registration) => registration.pushManager.getSubscription())
          .then((existing) => show(Boolean(existing)));
        button.addEventListener("click", async () => {
          button.disabled = true;
          try {
            const registration = await navigator.serviceWorker.ready;
            const current = await registration.pushManager.getSubscription();
            if (button.dataset.subscribed && current) {
              await fetch(PUSH_URL, {
                method: "DELETE",
                headers: { ...auth, "Content-Type": "application/json" },
                body: JSON.stringify({ endpoint: current.endpoint }),
              });
              await current.unsubscribe();
              show(false, "Alerts are off on this device.");
              return;
            }
            const subscription =
              current ||
              (await registration.pushManager.subscribe({
                userVisibleOnly: true,
                applicationServerKey: urlBase64ToBytes(key.public_key),
              }));
            const response = await fetch(PUSH_URL, {
              method: "POST",
              headers: { ...auth, "Content-Type": "application/json" },
              body: JSON.stringify(subscription.toJSON()),
            });
            if (!response.ok) {
              await subscription.unsubscribe();
              show(false, "stagelink refused the subscription (" + response.status + ").");
              return;
            }
            show(true, "You will be alerted when your deals change stage.");
          } catch (error) {
            show(false, "Alerts are not allowed in this browser.");
          } finally {
            button.disabled = false;
          }
        });
      })
      .catch(() => {});
  }

  function notify(setup) {
    const section = $("#notify");
    if (section && page && typeof setup === "function") setup(section, page);
  }

  window.stagelink = {
    flush,
    record,
    notify,
    pending: () => loadQueue().length,
    ready: keepOffline(),
  };
  notify(typeof window.stagelinkNotify === "function" ? window.stagelinkNotify : setupPush);

  render();
  flush();
})();
