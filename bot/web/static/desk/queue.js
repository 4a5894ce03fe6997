// The queue: filters in the URL (shareable, back button works), keyset paging with
// next_cursor, SLA urgency, and live refresh when tickets change.
import { ApiError, get, query } from "./api.js";
import { $, debounce, h, replaceChildren } from "./dom.js";
import { agentName, customerName, formatDateTime, relative, slaView, titleCase } from "./format.js";
import { onDeskEvent } from "./live.js";

const PAGE_SIZE = 50;
const MAX_RELOAD = 100;
const FILTERS = ["q", "status", "assignee", "kind", "priority", "channel", "sort"];

const state = { items: [], cursor: null, loading: false, flash: new Set() };

function filtersFromUrl() {
  const params = new URLSearchParams(location.search);
  const filters = {};
  for (const name of FILTERS) filters[name] = params.get(name) || "";
  return filters;
}

function fillForm(form, filters) {
  filters = { ...filters, sort: filters.sort || "sla" };
  for (const name of FILTERS) {
    const field = form.elements.namedItem(name);
    if (!field) continue;
    if (field.tagName === "SELECT" && filters[name] && !Array.from(field.options).some((o) => o.value === filters[name])) {
      field.append(h("option", { value: filters[name] }, filters[name]));
    }
    field.value = filters[name];
  }
}

function readForm(form) {
  const filters = {};
  for (const name of FILTERS) {
    const field = form.elements.namedItem(name);
    filters[name] = field ? field.value.trim() : "";
  }
  return filters;
}

function apiParams(filters) {
  const params = { ...filters };
  if (!params.sort) params.sort = "sla";
  return params;
}

function ticketLink(ticket) {
  return h("a", { class: "ticket-link", href: `/desk/tickets/${encodeURIComponent(ticket.number)}` }, ticket.number);
}

function badge(kind, value) {
  return value ? h("span", { class: `badge badge-${kind}-${value}` }, titleCase(value)) : "";
}

function slaCell(ticket) {
  const sla = slaView(ticket);
  return h("span", { class: `sla sla-${sla.state}`, title: sla.title, dataset: { sla: "1" } }, sla.text);
}

function row(ticket) {
  const sla = slaView(ticket);
  const classes = ["queue-row", `sla-row-${sla.state}`];
  if (state.flash.has(ticket.number)) classes.push("row-flash");
  const tr = h(
    "tr",
    { class: classes.join(" "), dataset: { number: ticket.number } },
    h("td", { class: "cell-number" }, ticketLink(ticket), h("div", { class: "cell-sub" }, titleCase(ticket.kind))),
    h("td", { class: "cell-subject" }, ticket.subject || h("span", { class: "muted" }, "(no subject)")),
    h(
      "td",
      {},
      customerName(ticket.customer),
      h("div", { class: "cell-sub" }, ticket.channel ? titleCase(ticket.channel) : ""),
    ),
    h("td", {}, badge("status", ticket.status)),
    h("td", {}, badge("priority", ticket.priority)),
    h("td", {}, ticket.assignee ? agentName(ticket.assignee) : h("span", { class: "muted" }, "Unassigned")),
    h("td", {}, slaCell(ticket)),
    h("td", { title: formatDateTime(ticket.updated_at) }, relative(ticket.updated_at)),
  );
  // The whole row opens the ticket on click; the link in it is the keyboard path.
  tr.addEventListener("click", (event) => {
    if (event.target.closest("a, button") || getSelection().toString()) return;
    location.assign(`/desk/tickets/${encodeURIComponent(ticket.number)}`);
  });
  return tr;
}

function render() {
  const body = $("#queue-rows");
  replaceChildren(body, state.items.map(row));
  $("#queue-table").setAttribute("aria-busy", "false");
  $("#queue-empty").hidden = state.items.length > 0;
  $("#queue-more").hidden = !state.cursor;
  const count = state.items.length;
  const breached = state.items.filter((t) => slaView(t).state === "breached").length;
  const summary = `${count}${state.cursor ? "+" : ""} ticket${count === 1 ? "" : "s"}` + (breached ? ` · ${breached} past SLA` : "");
  $("#queue-summary").textContent = summary;
}

function showError(error) {
  const box = $("#queue-error");
  box.textContent = error instanceof ApiError ? error.message : "The queue could not be loaded.";
  box.hidden = false;
  $("#queue-table").setAttribute("aria-busy", "false");
}

async function load({ append = false, limit = PAGE_SIZE } = {}) {
  if (state.loading) return;
  state.loading = true;
  $("#queue-error").hidden = true;
  try {
    const params = { ...apiParams(filtersFromUrl()), limit };
    if (append && state.cursor) params.cursor = state.cursor;
    const page = await get(`/tickets${query(params)}`);
    state.items = append ? state.items.concat(page.items) : page.items;
    state.cursor = page.next_cursor;
    render();
    $("#queue-new").hidden = true;
  } catch (error) {
    showError(error);
  } finally {
    state.loading = false;
  }
}

async function loadAssignees() {
  try {
    const agents = await get("/agents");
    const select = $("#f-assignee");
    const wanted = filtersFromUrl().assignee;
    for (const agent of Array.isArray(agents) ? agents : agents.items || []) {
      if (agent.active === false) continue;
      if (!Array.from(select.options).some((o) => o.value === String(agent.id))) {
        select.append(h("option", { value: String(agent.id) }, agentName(agent)));
      }
    }
    select.value = wanted;
  } catch (_err) {
    // Not everyone may list agents; "mine" and "unassigned" remain.
  }
}

const reloadLive = debounce(() => load({ limit: Math.min(Math.max(state.items.length, PAGE_SIZE), MAX_RELOAD) }), 400);

export function initQueue() {
  const form = $("#queue-filters");
  fillForm(form, filtersFromUrl());
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const filters = readForm(form);
    history.pushState(null, "", `/desk${query(filters)}`);
    load();
  });
  form.addEventListener("change", (event) => {
    if (event.target.tagName === "SELECT") form.requestSubmit();
  });
  form.addEventListener("reset", (event) => {
    event.preventDefault();
    fillForm(form, Object.fromEntries(FILTERS.map((n) => [n, ""])));
    form.requestSubmit();
  });
  window.addEventListener("popstate", () => {
    fillForm(form, filtersFromUrl());
    load();
  });
  $("#queue-more").addEventListener("click", () => load({ append: true }));
  $("#queue-refresh").addEventListener("click", () => load());

  onDeskEvent((event) => {
    if (event.ticket_number) {
      state.flash.add(event.ticket_number);
      setTimeout(() => state.flash.delete(event.ticket_number), 4000);
    }
    reloadLive();
  });
  // Due times move on their own: refresh the SLA column every 30 s without a request.
  setInterval(() => {
    if (state.items.length) render();
  }, 30000);
  loadAssignees();
  load();
}
