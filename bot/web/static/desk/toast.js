// In-page notifications: short, polite, dismissible, readable by screen readers.
import { h } from "./dom.js";

const LIFETIME_MS = { info: 6000, success: 3000, error: 9000, handoff: 15000 };

/** toast("Saved") or toast("T-1042 needs an agent", {kind: "handoff", href: "/desk/tickets/T-1042"}) */
export function toast(message, { kind = "info", href = null, linkText = "Open" } = {}) {
  const box = document.getElementById("toasts");
  if (!box) return null;
  const close = h("button", { type: "button", class: "toast-close", "aria-label": "Dismiss" }, "×");
  const item = h(
    "div",
    { class: `toast toast-${kind}`, role: kind === "error" ? "alert" : null },
    h("span", { class: "toast-text" }, message),
    href ? h("a", { class: "toast-link", href }, linkText) : null,
    close,
  );
  const remove = () => item.remove();
  close.addEventListener("click", remove);
  box.append(item);
  setTimeout(remove, LIFETIME_MS[kind] || 6000);
  return item;
}

export const toastError = (error) => toast(error && error.message ? error.message : String(error), { kind: "error" });
