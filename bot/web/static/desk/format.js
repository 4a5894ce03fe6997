// Display helpers: dates, durations, labels. Pure functions returning strings.

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const timeOnly = new Intl.DateTimeFormat(undefined, { timeStyle: "short" });

export function parseDate(value) {
  if (!value) return null;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

export function formatDateTime(value) {
  const date = parseDate(value);
  return date ? dateTime.format(date) : "";
}

export function formatTime(value) {
  const date = parseDate(value);
  if (!date) return "";
  const sameDay = date.toDateString() === new Date().toDateString();
  return sameDay ? timeOnly.format(date) : dateTime.format(date);
}

/** "3 min", "2 h 5 min", "4 d 3 h" for a duration in milliseconds. */
export function formatDuration(ms) {
  const minutes = Math.round(Math.abs(ms) / 60000);
  if (minutes < 1) return "<1 min";
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return minutes % 60 ? `${hours} h ${minutes % 60} min` : `${hours} h`;
  const days = Math.floor(hours / 24);
  return hours % 24 ? `${days} d ${hours % 24} h` : `${days} d`;
}

export function relative(value, now = Date.now()) {
  const date = parseDate(value);
  if (!date) return "";
  const ms = date.getTime() - now;
  if (Math.abs(ms) < 45000) return "just now";
  return ms < 0 ? `${formatDuration(ms)} ago` : `in ${formatDuration(ms)}`;
}

const TARGETS = { first_response: "First response", resolution: "Resolution" };

/**
 * The SLA of a ticket summary as {state, text, title}. The server's state is kept, except
 * that a due time passing while the page is open turns it into a breach at once.
 */
export function slaView(ticket, now = Date.now()) {
  const sla = ticket.sla || {};
  const due = parseDate(sla.due_at);
  if (!sla.target || !due) {
    if (ticket.resolved_at) return { state: "done", text: "Resolved", title: `Resolved ${formatDateTime(ticket.resolved_at)}` };
    return { state: "none", text: "—", title: "No SLA target" };
  }
  const label = TARGETS[sla.target] || sla.target;
  const left = due.getTime() - now;
  const state = left <= 0 ? "breached" : sla.state || "ok";
  const text = left <= 0 ? `${label} overdue ${formatDuration(left)}` : `${label} due in ${formatDuration(left)}`;
  return { state, text, title: `${label} due ${formatDateTime(sla.due_at)}` };
}

export const titleCase = (value) => (value ? String(value).charAt(0).toUpperCase() + String(value).slice(1).replaceAll("_", " ") : "");

export function customerName(customer) {
  if (!customer) return "Unknown customer";
  return customer.display_name || `Customer #${customer.id}`;
}

export function agentName(agent) {
  return agent ? agent.name || agent.email : "";
}

const EVENT_TEXT = {
  created: () => "Ticket created",
  owner_changed: (d) => `Conversation owner: ${d.from || "?"} → ${d.to || "?"}${d.reason ? ` (${d.reason})` : ""}`,
  claimed: (d) => `Claimed${d.agent ? ` by ${d.agent}` : ""}`,
  assigned: (d) => `Assigned${d.agent ? ` to ${d.agent}` : ""}`,
  agent_reply: () => "Agent replied",
  customer_message: () => "Customer wrote",
  note: () => "Internal note added",
  priority_changed: (d) => `Priority ${d.from || "?"} → ${d.to || "?"}`,
  status_changed: (d) => `Status ${d.from || "?"} → ${d.to || "?"}`,
  resolved: () => "Resolved",
  reopened: () => "Reopened",
  merged: (d) => `Merged into ${d.into || "?"}`,
  rated: (d) => `Customer rated ${d.score}/5`,
  rating_comment: () => "Customer left a comment",
  delivery_failed: (d) => `Delivery failed${d.error ? `: ${d.error}` : ""}`,
  handed_back: () => "Handed back to the bot",
};

export function describeEvent(event) {
  const describe = EVENT_TEXT[event.kind];
  const data = event.data || {};
  return describe ? describe(data) : titleCase(event.kind);
}
