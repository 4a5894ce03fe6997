// Admin: the team (add, change role, deactivate, reset a password) and canned responses.
import { del, get, patch, post } from "./api.js";
import { $, h, replaceChildren } from "./dom.js";
import { titleCase } from "./format.js";
import { toast, toastError } from "./toast.js";

const me = () => Number(document.body.dataset.agentId);
const listOf = (data) => (Array.isArray(data) ? data : (data && data.items) || []);

function agentRow(agent) {
  const role = h(
    "select",
    { "aria-label": `Role of ${agent.name}` },
    ["agent", "admin"].map((r) => h("option", { value: r, selected: agent.role === r }, titleCase(r))),
  );
  role.disabled = agent.id === me(); // nobody demotes themselves by accident
  role.addEventListener("change", () => update(agent, { role: role.value }, "Role changed."));
  const active = h("input", { type: "checkbox", checked: agent.active !== false, "aria-label": `${agent.name} is active` });
  active.disabled = agent.id === me();
  active.addEventListener("change", () => update(agent, { active: active.checked }, active.checked ? "Agent activated." : "Agent deactivated; their sessions end."));
  // A password field, not prompt(): the new password is never shown in clear text.
  const password = h("input", {
    type: "password",
    minlength: 8,
    maxlength: 1024,
    autocomplete: "new-password",
    "aria-label": `New password for ${agent.name}`,
    placeholder: "New password",
  });
  const passwordForm = h(
    "form",
    { class: "inline-form password-form", hidden: true },
    password,
    h("button", { type: "submit", class: "btn btn-small" }, "Save"),
  );
  passwordForm.addEventListener("submit", (event) => {
    event.preventDefault();
    if (password.value.length < 8) {
      toast("A password needs at least 8 characters.", { kind: "error" });
      return;
    }
    update(agent, { password: password.value }, "Password changed.");
  });
  const reset = h("button", { type: "button", class: "btn btn-ghost btn-small", "aria-expanded": "false" }, "Set password…");
  reset.addEventListener("click", () => {
    passwordForm.hidden = !passwordForm.hidden;
    reset.setAttribute("aria-expanded", String(!passwordForm.hidden));
    if (!passwordForm.hidden) password.focus();
  });
  return h(
    "tr",
    { class: agent.active === false ? "row-inactive" : "" },
    h("td", {}, agent.name),
    h("td", {}, agent.email),
    h("td", {}, role),
    h("td", {}, active),
    h("td", {}, reset, passwordForm),
  );
}

async function update(agent, body, message) {
  try {
    await patch(`/agents/${agent.id}`, body);
    toast(message, { kind: "success" });
  } catch (error) {
    toastError(error);
  }
  await loadAgents();
}

async function loadAgents() {
  const error = $("#agents-error");
  try {
    const agents = listOf(await get("/agents"));
    replaceChildren($("#agents-rows"), agents.map(agentRow));
    error.hidden = true;
  } catch (err) {
    error.textContent = err.message;
    error.hidden = false;
  }
  $("#agents-table").setAttribute("aria-busy", "false");
}

function cannedItem(item) {
  const remove = h("button", { type: "button", class: "btn btn-ghost btn-small", "aria-label": `Delete ${item.title}` }, "Delete");
  remove.addEventListener("click", async () => {
    if (!confirm(`Delete the canned response "${item.title}"?`)) return;
    try {
      await del(`/canned-responses/${item.id}`);
      await loadCanned();
    } catch (error) {
      toastError(error);
    }
  });
  return h("li", {}, h("div", { class: "canned-title" }, item.title, " ", remove), h("div", { class: "canned-text" }, item.text));
}

async function loadCanned() {
  try {
    const items = listOf(await get("/canned-responses"));
    replaceChildren($("#canned-list"), items.length ? items.map(cannedItem) : h("li", { class: "muted" }, "None yet."));
  } catch (error) {
    toastError(error);
  }
}

export function initAgents() {
  $("#agent-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const body = Object.fromEntries(["name", "email", "role", "password"].map((n) => [n, form.elements.namedItem(n).value]));
    try {
      await post("/agents", body);
      toast(`${body.name} can log in now.`, { kind: "success" });
      form.reset();
      await loadAgents();
    } catch (error) {
      toastError(error);
    }
  });
  $("#canned-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    try {
      await post("/canned-responses", { title: form.elements.namedItem("title").value, text: form.elements.namedItem("text").value });
      form.reset();
      await loadCanned();
    } catch (error) {
      toastError(error);
    }
  });
  loadAgents();
  loadCanned();
}
