// Live updates: one EventSource on /api/v1/events for the whole page.
// Pages listen with onDeskEvent(fn); a handoff (owner_changed → queued) raises a toast and,
// when the agent allowed it, a browser notification — the moment it happens.
import { toast } from "./toast.js";

const listeners = new Set();
let source = null;
let retryMs = 2000;

export function onDeskEvent(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function setStatus(state, label) {
  const node = document.getElementById("live-status");
  if (!node) return;
  node.dataset.state = state;
  const text = node.querySelector(".live-label");
  if (text) text.textContent = label;
  document.body.dataset.live = state;
}

export function isHandoff(event) {
  return event.kind === "owner_changed" && event.data && event.data.to === "queued";
}

function notifyHandoff(event) {
  const number = event.ticket_number || "A conversation";
  const reason = event.data && event.data.reason ? ` (${String(event.data.reason).replaceAll("_", " ")})` : "";
  const href = event.ticket_number ? `/desk/tickets/${encodeURIComponent(event.ticket_number)}` : "/desk";
  toast(`${number} was handed off and waits for an agent${reason}.`, { kind: "handoff", href });
  if ("Notification" in window && Notification.permission === "granted") {
    try {
      const note = new Notification(`${number} needs an agent`, {
        body: `A conversation was handed off${reason}.`,
        tag: `handoff-${number}`,
      });
      note.onclick = () => {
        window.focus();
        location.assign(href);
      };
    } catch (_err) {
      // Some browsers only allow notifications from a service worker; the toast remains.
    }
  }
}

function dispatch(event) {
  if (isHandoff(event)) notifyHandoff(event);
  for (const fn of listeners) {
    try {
      fn(event);
    } catch (err) {
      console.warn("live update handler failed", err);
    }
  }
}

function connect() {
  if (source) source.close();
  setStatus("connecting", "Connecting…");
  source = new EventSource("/api/v1/events");
  source.onopen = () => {
    retryMs = 2000;
    setStatus("live", "Live");
    // Events are not replayed: whatever happened before this (re)connection — while offline,
    // or between the page's first load and the stream opening — is picked up by a reload.
    for (const fn of listeners) {
      try {
        fn({ kind: "__reconnected" });
      } catch (_err) {
        /* a page's reload failing is shown by the page */
      }
    }
  };
  source.onmessage = (message) => {
    let event;
    try {
      event = JSON.parse(message.data);
    } catch (_err) {
      return;
    }
    dispatch(event);
  };
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) {
      // Refused (e.g. 401 after logout elsewhere): the browser gives up, so retry ourselves;
      // an ended session is sent to the login page by the next API call.
      setStatus("offline", "Offline — retrying");
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 60000);
      fetch("/api/v1/me", { credentials: "same-origin" }).then((r) => {
        if (r.status === 401) location.assign(`/desk/login?next=${encodeURIComponent(location.pathname)}`);
      }, () => {});
    } else {
      setStatus("connecting", "Reconnecting…");
    }
  };
}

function setupNotificationButton() {
  const button = document.getElementById("enable-notifications");
  if (!button || !("Notification" in window)) return;
  if (Notification.permission !== "default") return;
  button.hidden = false;
  button.addEventListener("click", async () => {
    const answer = await Notification.requestPermission();
    button.hidden = true;
    toast(answer === "granted" ? "You will be notified of handoffs." : "Notifications stay off; handoffs still show here.");
  });
}

export function startLive() {
  setupNotificationButton();
  connect();
  window.addEventListener("beforeunload", () => source && source.close());
}
