// One ticket: the conversation with notes interleaved, the actions, the customer's archive
// and the audit log. Every action answers with the whole ticket, which is re-rendered; live
// events for this ticket (a customer reply, a colleague's action) reload it.
import { ApiError, del, get, patch, post } from "./api.js";
import { $, $$, debounce, h, props, replaceChildren } from "./dom.js";
import {
  agentName,
  customerName,
  describeEvent,
  formatDateTime,
  formatTime,
  relative,
  slaView,
  titleCase,
} from "./format.js";
import { onDeskEvent } from "./live.js";
import { toast, toastError } from "./toast.js";

const me = () => Number(document.body.dataset.agentId);
const isAdmin = () => document.body.dataset.agentRole === "admin";
const number = () => document.body.dataset.ticket;
const base = () => `/tickets/${encodeURIComponent(number())}`;

let ticket = null;
let agentsLoaded = false;

// -- rendering --------------------------------------------------------------------------
function authorLabel(message) {
  if (message.author === "customer") return customerName(ticket.customer);
  if (message.author === "agent") return message.agent ? agentName(message.agent) : "Agent";
  if (message.author === "bot") return "Bot";
  return titleCase(message.author || "system");
}

function attachmentList(attachments) {
  if (!attachments || !attachments.length) return null;
  return h(
    "ul",
    { class: "attachments", "aria-label": "Attachments" },
    attachments.map((a) => {
      const label = a.name || a.file_name || titleCase(a.kind || "file");
      const size = a.size ? ` · ${Math.max(1, Math.round(a.size / 1024))} KB` : "";
      const url = typeof a.url === "string" && /^(https?:\/\/|\/)/.test(a.url) ? a.url : null;
      return h(
        "li",
        { class: "attachment" },
        h("span", { class: "attachment-kind" }, titleCase(a.kind || "file")),
        " ",
        url ? h("a", { href: url, rel: "noopener noreferrer", target: "_blank" }, label) : label,
        size,
      );
    }),
  );
}

function deliveryState(message) {
  if (message.direction !== "out" || message.author !== "agent") return null;
  if (message.status === "failed") {
    return h(
      "div",
      { class: "delivery delivery-failed", role: "alert" },
      h("span", {}, `Not delivered${message.error ? `: ${message.error}` : ""}`),
      " ",
      h("button", { type: "button", class: "btn btn-small btn-danger", onclick: () => retry(message.id) }, "Retry"),
    );
  }
  const labels = { queued: "Queued for delivery", sent: "Delivered", received: "" };
  const label = labels[message.status] ?? titleCase(message.status);
  return label ? h("div", { class: `delivery delivery-${message.status}` }, label) : null;
}

function messageItem(message) {
  const author = message.author || (message.direction === "in" ? "customer" : "bot");
  return h(
    "li",
    { class: `msg msg-${author} msg-${message.direction === "in" ? "in" : "out"}`, dataset: { id: message.id } },
    h(
      "div",
      { class: "msg-meta" },
      h("span", { class: "msg-author" }, authorLabel({ ...message, author })),
      h("time", { datetime: message.created_at, title: formatDateTime(message.created_at) }, formatTime(message.created_at)),
    ),
    message.text
      ? h("div", { class: "msg-text" }, message.text)
      : h("div", { class: "msg-text muted" }, message.direction === "in" ? "(pressed a button)" : "(no text)"),
    attachmentList(message.attachments),
    message.buttons && message.buttons.length
      ? h("div", { class: "msg-buttons", "aria-label": "Buttons offered" }, message.buttons.map((b) => h("span", { class: "chip" }, b.title)))
      : null,
    deliveryState(message),
  );
}

function noteItem(note) {
  return h(
    "li",
    { class: "msg msg-note", dataset: { note: note.id } },
    h(
      "div",
      { class: "msg-meta" },
      h("span", { class: "note-flag" }, "Internal note"),
      h("span", { class: "msg-author" }, note.agent ? agentName(note.agent) : "Agent"),
      h("time", { datetime: note.created_at, title: formatDateTime(note.created_at) }, formatTime(note.created_at)),
    ),
    h("div", { class: "msg-text" }, note.text),
    h("div", { class: "note-hint" }, "Only agents see this."),
  );
}

function renderTimeline() {
  const list = $("#timeline");
  const wasAtBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 40;
  const entries = [
    ...(ticket.messages || []).map((m) => ({ at: m.created_at, order: 0, id: m.id, node: () => messageItem(m) })),
    ...(ticket.notes || []).map((n) => ({ at: n.created_at, order: 1, id: n.id, node: () => noteItem(n) })),
  ];
  entries.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : a.order - b.order || a.id - b.id));
  if (!entries.length) {
    replaceChildren(list, h("li", { class: "empty-state" }, "No messages yet."));
    return;
  }
  replaceChildren(list, entries.map((e) => e.node()));
  if (wasAtBottom || !list.dataset.rendered) list.scrollTop = list.scrollHeight;
  list.dataset.rendered = "1";
}

function badges() {
  const sla = slaView(ticket);
  return [
    h("span", { class: `badge badge-status-${ticket.status}` }, titleCase(ticket.status)),
    h("span", { class: `badge badge-priority-${ticket.priority}` }, titleCase(ticket.priority)),
    h("span", { class: "badge" }, titleCase(ticket.kind)),
    ticket.channel ? h("span", { class: "badge" }, titleCase(ticket.channel)) : null,
    h("span", { class: `sla sla-${sla.state}`, title: sla.title }, sla.text),
  ];
}

function renderHead() {
  $("#t-subject").textContent = ticket.subject || "";
  replaceChildren($("#t-badges"), badges());
  document.title = `${ticket.number} ${ticket.subject || ""} · desk`;
  const merged = $("#t-merged");
  const into = ticket.merged_into || (ticket.events || []).filter((e) => e.kind === "merged").map((e) => e.data.into).pop();
  if (into) {
    replaceChildren(
      merged,
      "This ticket was merged into ",
      h("a", { href: `/desk/tickets/${encodeURIComponent(into)}` }, String(into)),
      ".",
    );
  }
  merged.hidden = !into;
}

function renderProps() {
  const due = (value) => (value ? h("span", { title: formatDateTime(value) }, `${formatDateTime(value)} (${relative(value)})`) : null);
  props($("#t-props"), [
    ["Assignee", ticket.assignee ? agentName(ticket.assignee) : null],
    ["Created", formatDateTime(ticket.created_at)],
    ["First response due", ticket.first_response_at ? `answered ${formatDateTime(ticket.first_response_at)}` : due(ticket.first_response_due)],
    ["Resolution due", ticket.resolved_at ? `resolved ${formatDateTime(ticket.resolved_at)}` : due(ticket.resolution_due)],
    ["Escalation", ticket.escalation_reason ? titleCase(ticket.escalation_reason) : null],
  ]);
  $("#t-priority").value = ticket.priority;
  $("#t-status").value = ticket.status;
  const closed = ticket.status === "resolved" || ticket.status === "closed";
  const mine = ticket.assignee && ticket.assignee.id === me();
  const button = (action) => $(`[data-action="${action}"]`);
  button("claim").hidden = Boolean(mine);
  button("claim").disabled = closed;
  button("hand-back").disabled = closed;
  button("resolve").hidden = closed;
  button("reopen").hidden = !closed;
}

function renderFields() {
  const fields = ticket.fields || {};
  const pairs = Object.entries(fields)
    .filter(([, v]) => v !== null && v !== undefined && v !== "" && !(Array.isArray(v) && !v.length))
    .map(([k, v]) => [titleCase(k), Array.isArray(v) ? v.join(", ") : typeof v === "object" ? JSON.stringify(v) : String(v)]);
  if (ticket.order_id && !("order_id" in fields)) pairs.unshift(["Order id", ticket.order_id]);
  const list = $("#t-fields");
  if (!pairs.length) {
    replaceChildren(list, h("dd", { class: "muted" }, "No form fields."));
    return;
  }
  props(list, pairs);
}

function renderOrder() {
  const box = $("#t-order");
  const order = ticket.order;
  if (!order) {
    replaceChildren(box, h("p", { class: "muted" }, ticket.order_id ? `Order ${ticket.order_id} is not in the shop's orders.` : "No order on this ticket."));
    return;
  }
  const list = h("dl", { class: "props" });
  const items = (order.items || []).map((item) => {
    const name = item.name || item.title || item.sku || item.product || "item";
    const qty = item.qty || item.quantity;
    const extra = [item.size, item.color].filter(Boolean).join(", ");
    return h("li", {}, `${name}${extra ? ` (${extra})` : ""}${qty ? ` × ${qty}` : ""}`);
  });
  const pairs = [
    ["Order", order.order_id],
    ["Status", titleCase(order.status)],
    ["Customer", order.customer_name],
    ["Items", items.length ? h("ul", { class: "plain-list" }, items) : null],
    ["Total", order.total !== undefined && order.total !== null ? `${Number(order.total).toFixed(2)} ${order.currency || ""}` : null],
    ["Ordered", formatDateTime(order.ordered_at)],
    ["Delivered", formatDateTime(order.delivered_at)],
  ];
  props(list, pairs);
  replaceChildren(box, list);
}

function renderRating() {
  const panel = $("#rating-panel");
  if (!ticket.rating) {
    panel.hidden = true;
    return;
  }
  panel.hidden = false;
  const score = Number(ticket.rating);
  replaceChildren(
    $("#t-rating"),
    h(
      "p",
      { class: "rating", "aria-label": `Rated ${score} out of 5` },
      h("span", { class: "stars", "aria-hidden": "true" }, "★".repeat(score) + "☆".repeat(Math.max(0, 5 - score))),
      h("span", { class: "rating-score" }, ` ${score}/5`),
    ),
    ticket.rating_comment ? h("blockquote", { class: "rating-comment" }, ticket.rating_comment) : null,
  );
}

function customerForm(customer) {
  const tags = h("input", { id: "c-tags", value: (customer.tags || []).join(", "), maxlength: 500, autocomplete: "off" });
  const notes = h("textarea", { id: "c-notes", rows: 3, maxlength: 4000 });
  notes.value = customer.notes || "";
  const form = h(
    "form",
    { class: "stack-form customer-form" },
    h("div", { class: "field" }, h("label", { for: "c-tags" }, "Tags (comma separated)"), tags),
    h("div", { class: "field" }, h("label", { for: "c-notes" }, "Notes about the customer"), notes),
    h("button", { type: "submit", class: "btn btn-ghost btn-small" }, "Save customer"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {
      tags: tags.value.split(",").map((t) => t.trim()).filter(Boolean),
      notes: notes.value,
    };
    try {
      await patch(`/customers/${customer.id}`, body);
      toast("Customer saved.", { kind: "success" });
      await load();
    } catch (error) {
      toastError(error);
    }
  });
  return form;
}

function adminTools(customer) {
  if (!isAdmin()) return null;
  const exportButton = h("button", { type: "button", class: "btn btn-ghost btn-small" }, "Export data (JSON)");
  exportButton.addEventListener("click", async () => {
    try {
      const data = await get(`/customers/${customer.id}/export`);
      const blob = new Blob([JSON.stringify(data, null, 2)], { type: "application/json" });
      const link = h("a", { href: URL.createObjectURL(blob), download: `customer-${customer.id}.json` });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    } catch (error) {
      toastError(error);
    }
  });
  const eraseButton = h("button", { type: "button", class: "btn btn-danger btn-small" }, "Erase customer…");
  eraseButton.addEventListener("click", async () => {
    const typed = prompt(`Erasing removes this customer's personal data and message text for good; ticket statistics stay.\nType ERASE to confirm.`);
    if (typed !== "ERASE") return;
    try {
      await del(`/customers/${customer.id}`);
      toast("Customer erased.", { kind: "success" });
      await load();
    } catch (error) {
      toastError(error);
    }
  });
  return h("div", { class: "admin-tools", role: "group", "aria-label": "Customer data (admin)" }, exportButton, " ", eraseButton);
}

function renderCustomer() {
  const box = $("#t-customer");
  const c = ticket.customer;
  if (!c) {
    replaceChildren(box, h("p", { class: "muted" }, "No customer."));
    return;
  }
  const info = h("dl", { class: "props" });
  props(info, [
    ["Name", customerName(c)],
    ["E-mail", c.email],
    ["Phone", c.phone],
    ["Language", c.language],
    ["Reachable", c.unreachable ? h("span", { class: "text-danger" }, "No — deliveries fail") : "Yes"],
  ]);
  const identities = (c.identities || []).map((i) => h("li", {}, h("span", { class: "badge" }, titleCase(i.channel)), " ", i.external_id));
  const others = (c.tickets || []).filter((t) => t.number !== ticket.number);
  const history = others.map((t) =>
    h(
      "li",
      {},
      h("a", { href: `/desk/tickets/${encodeURIComponent(t.number)}` }, t.number),
      " ",
      t.subject || titleCase(t.kind),
      " ",
      h("span", { class: `badge badge-status-${t.status}` }, titleCase(t.status)),
      h("span", { class: "muted" }, ` ${formatDateTime(t.created_at)}`),
    ),
  );
  const tags = (c.tags || []).map((t) => h("span", { class: "tag" }, t));
  replaceChildren(
    box,
    info,
    tags.length ? h("p", { class: "tags", "aria-label": "Tags" }, tags) : null,
    h("h3", { class: "subhead" }, "Channels"),
    identities.length ? h("ul", { class: "plain-list" }, identities) : h("p", { class: "muted" }, "No channel identities."),
    h("h3", { class: "subhead" }, "Earlier tickets"),
    history.length ? h("ul", { class: "plain-list" }, history) : h("p", { class: "muted" }, "None."),
    customerForm(c),
    adminTools(c),
  );
}

function renderAudit() {
  const list = $("#t-audit");
  const events = [...(ticket.events || [])].reverse();
  if (!events.length) {
    replaceChildren(list, h("li", { class: "muted" }, "No events."));
    return;
  }
  replaceChildren(
    list,
    events.map((e) =>
      h(
        "li",
        { class: `audit-item audit-${e.kind}` },
        h("time", { datetime: e.created_at, title: formatDateTime(e.created_at) }, formatTime(e.created_at)),
        " ",
        h("span", { class: "audit-actor" }, e.actor || "system"),
        " ",
        h("span", { class: "audit-what" }, describeEvent(e)),
      ),
    ),
  );
}

function render(detail) {
  ticket = detail;
  renderHead();
  renderTimeline();
  renderProps();
  renderFields();
  renderOrder();
  renderRating();
  renderCustomer();
  renderAudit();
  $("#ticket-layout").setAttribute("aria-busy", "false");
}

// -- data and actions -------------------------------------------------------------------
async function load() {
  try {
    render(await get(base()));
    $("#ticket-error").hidden = true;
  } catch (error) {
    const box = $("#ticket-error");
    box.textContent = error instanceof ApiError && error.status === 404 ? `Ticket ${number()} does not exist.` : error.message;
    box.hidden = false;
    if (!ticket) $("#ticket-layout").hidden = true;
  }
}

async function act(path, body, success) {
  const buttons = $$("#t-actions button, #composer-send");
  buttons.forEach((b) => (b.disabled = true));
  try {
    render(await post(path, body));
    if (success) toast(success, { kind: "success" });
    return true;
  } catch (error) {
    toastError(error);
    if (error instanceof ApiError && error.status === 409) await load();
    return false;
  } finally {
    buttons.forEach((b) => (b.disabled = false));
    if (ticket) renderProps();
  }
}

async function retry(messageId) {
  await act(`/messages/${messageId}/retry`, {}, "Queued for another delivery.");
  await load();
}

const ACTIONS = {
  claim: ["claim", "You own this conversation now."],
  "hand-back": ["hand-back", "Handed back to the bot."],
  resolve: ["resolve", "Resolved; the customer is asked for a rating."],
  reopen: ["reopen", "Reopened."],
};

function mode() {
  return document.querySelector('input[name="mode"]:checked').value;
}

function syncComposer() {
  const note = mode() === "note";
  $("#composer").classList.toggle("composer-note", note);
  $("#composer-send").textContent = note ? "Add note" : "Send reply";
  $("#composer-label").textContent = note ? "Internal note" : "Reply to the customer";
  $("#composer-hint").textContent = note ? "Only agents see notes; the customer never does." : "Sent to the customer on their channel.";
  $("#composer-text").placeholder = note ? "Write an internal note… (Ctrl+Enter to add)" : "Write a reply… (Ctrl+Enter to send)";
}

async function submitComposer(event) {
  event.preventDefault();
  const field = $("#composer-text");
  const text = field.value.trim();
  if (!text) {
    field.focus();
    toast("Write something first.", { kind: "error" });
    return;
  }
  const note = mode() === "note";
  const ok = await act(`${base()}/${note ? "notes" : "reply"}`, { text }, note ? "Note added." : "Reply queued for the customer.");
  if (ok) {
    field.value = "";
    field.focus();
  }
}

async function loadCanned() {
  try {
    const data = await get("/canned-responses");
    const select = $("#canned");
    for (const item of Array.isArray(data) ? data : data.items || []) {
      select.append(h("option", { value: String(item.id), title: item.text }, item.title));
    }
  } catch (_err) {
    $("#canned").hidden = true;
  }
}

async function useCanned() {
  const select = $("#canned");
  const id = select.value;
  if (!id) return;
  try {
    const rendered = await post(`${base()}/render-canned`, { id: Number(id) });
    const field = $("#composer-text");
    field.value = field.value ? `${field.value.trimEnd()}\n${rendered.text}` : rendered.text;
    field.focus();
  } catch (error) {
    toastError(error);
  } finally {
    select.value = "";
  }
}

async function loadAgents() {
  if (agentsLoaded) return;
  try {
    const data = await get("/agents");
    const select = $("#t-assign");
    for (const agent of Array.isArray(data) ? data : data.items || []) {
      if (agent.active === false) continue;
      select.append(h("option", { value: String(agent.id) }, `${agentName(agent)}${agent.id === me() ? " (me)" : ""}`));
    }
    agentsLoaded = true;
  } catch (_err) {
    $("#assign-form").hidden = true;
  }
}

export function initTicket() {
  $$("#t-actions [data-action]").forEach((button) => {
    const [path, message] = ACTIONS[button.dataset.action];
    button.addEventListener("click", () => act(`${base()}/${path}`, {}, message));
  });
  $("#t-priority").addEventListener("change", (e) => act(`${base()}/priority`, { priority: e.target.value }, "Priority changed."));
  $("#t-status").addEventListener("change", (e) => act(`${base()}/status`, { status: e.target.value }, "Status changed."));
  $("#assign-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const id = $("#t-assign").value;
    if (!id) return;
    act(`${base()}/assign`, { agent_id: Number(id) }, "Assigned.");
  });
  $("#merge-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const into = $("#t-merge").value.trim().toUpperCase();
    if (!/^T-\d+$/.test(into)) {
      toast("Enter a ticket number such as T-1042.", { kind: "error" });
      return;
    }
    if (!confirm(`Merge ${number()} into ${into}? This ticket is closed and its conversation continues on ${into}.`)) return;
    act(`${base()}/merge`, { into }, `Merged into ${into}.`);
  });
  $$('input[name="mode"]').forEach((r) => r.addEventListener("change", syncComposer));
  $("#composer").addEventListener("submit", submitComposer);
  $("#composer-text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) $("#composer").requestSubmit();
  });
  $("#canned").addEventListener("change", useCanned);
  syncComposer();

  const reload = debounce(load, 300);
  onDeskEvent((event) => {
    if (event.kind === "__reconnected" || event.ticket_number === number()) reload();
  });
  setInterval(() => ticket && renderHead(), 30000);
  loadAgents();
  loadCanned();
  load();
}
