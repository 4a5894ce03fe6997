// Missed questions: what the bot did not answer, grouped by similarity. An admin turns a group
// into a phrasing of an FAQ entry or a product alias in one click (the suggested entry or
// product is preselected), or dismisses it; the bot uses an addition at once.
// Customer text is inserted as text only (dom.js), never as HTML.
import { del, get, post, query } from "./api.js";
import { $, debounce, h, replaceChildren } from "./dom.js";
import { formatDateTime, relative } from "./format.js";
import { onDeskEvent } from "./live.js";
import { toast, toastError } from "./toast.js";

const REASONS = {
  fallback: "not understood",
  faq_unknown: "no FAQ answer",
  product_unknown: "product not found",
  low_confidence: "unsure answer",
};
const state = { targets: null, admin: false, loading: false };

function filters() {
  return { days: $("#m-days").value, language: $("#m-language").value };
}

/** A <select> of `items`, suggestions first; `preferred` selected, else a "choose" prompt. */
function targetSelect(items, suggestions, key, label, ariaLabel, preferred, prompt) {
  const suggested = new Set(suggestions.map((s) => s[key]));
  const options = [h("option", { value: "", disabled: true, selected: !preferred }, prompt)];
  if (suggestions.length) {
    options.push(
      h("optgroup", { label: "Suggested" }, suggestions.map((s) => h("option", { value: s[key], selected: s[key] === preferred }, label(s)))),
    );
  }
  const rest = items.filter((item) => !suggested.has(item[key]));
  options.push(h("optgroup", { label: "All" }, rest.map((item) => h("option", { value: item[key], selected: item[key] === preferred }, label(item)))));
  return h("select", { class: "teach-target", required: true, "aria-label": ariaLabel }, options);
}

function languageSelect(group, ariaLabel) {
  const languages = state.targets.languages;
  return h(
    "select",
    { class: "teach-language", "aria-label": ariaLabel },
    languages.map((lang) => h("option", { value: lang, selected: lang === group.language }, lang)),
  );
}

function faqForm(group) {
  const target = targetSelect(
    state.targets.faq,
    group.faq_suggestions,
    "id",
    (entry) => `${entry.id} — ${entry.question}`,
    "FAQ entry",
    group.faq_suggestions.length ? group.faq_suggestions[0].id : null,
    "Choose an FAQ entry…",
  );
  const language = languageSelect(group, "Language of the phrasing");
  const text = h("input", { type: "text", class: "teach-text", maxlength: 300, required: true, "aria-label": "Phrasing", value: group.text });
  const form = h(
    "form",
    { class: "teach-form teach-faq" },
    h("span", { class: "teach-label" }, "FAQ phrasing"),
    target,
    language,
    text,
    h("button", { type: "submit", class: "btn btn-small add-phrasing" }, "Add phrasing"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    teach(form, "/missed/phrasing", { missed_ids: group.ids, faq_id: target.value, language: language.value, text: text.value }, `Added as a phrasing of ${target.value}. The bot answers it from now on.`);
  });
  return form;
}

function aliasForm(group) {
  const suggestions = group.product_suggestions;
  const target = targetSelect(
    state.targets.products,
    suggestions,
    "sku",
    (product) => `${product.name} (${product.sku})`,
    "Product",
    suggestions.length ? suggestions[0].sku : null,
    "Choose a product…",
  );
  const language = languageSelect(group, "Language of the alias");
  const aliasFor = (sku) => (suggestions.find((s) => s.sku === sku) || {}).alias || "";
  const text = h("input", {
    type: "text",
    class: "teach-text",
    maxlength: 60,
    required: true,
    "aria-label": "Alias: the words customers use for the product",
    placeholder: "the words customers use for it",
    value: aliasFor(target.value),
  });
  target.addEventListener("change", () => {
    const suggested = aliasFor(target.value);
    if (suggested) text.value = suggested;
  });
  const form = h(
    "form",
    { class: "teach-form teach-alias" },
    h("span", { class: "teach-label" }, "Product alias"),
    target,
    language,
    text,
    h("button", { type: "submit", class: "btn btn-small btn-ghost add-alias" }, "Add alias"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    teach(form, "/missed/alias", { missed_ids: group.ids, sku: target.value, language: language.value, text: text.value }, `Added "${text.value}" as an alias of ${target.value}.`);
  });
  return form;
}

async function teach(form, path, body, message) {
  const buttons = form.closest(".missed-group").querySelectorAll("button");
  buttons.forEach((b) => (b.disabled = true));
  try {
    await post(path, body);
    toast(message, { kind: "success" });
    form.closest(".missed-group").classList.add("is-done");
    await Promise.all([load(), loadAdditions()]);
  } catch (error) {
    toastError(error);
    buttons.forEach((b) => (b.disabled = false));
  }
}

function groupCard(group) {
  const reasons = Object.entries(group.reasons).map(([reason, count]) =>
    h("span", { class: "missed-reason" }, `${REASONS[reason] || reason}${count > 1 ? ` ×${count}` : ""}`),
  );
  if (group.handoffs) {
    reasons.push(h("span", { class: "missed-reason missed-reason-handoff" }, `handed to a person ×${group.handoffs}`));
  }
  const others = group.examples.filter((text) => text !== group.text);
  const card = h(
    "article",
    { class: "missed-group", dataset: { first: String(group.ids[0]), language: group.language } },
    h(
      "div",
      { class: "missed-top" },
      h("div", { class: "missed-count", "aria-label": `asked ${group.count} times` }, String(group.count), h("small", {}, group.count === 1 ? "time" : "times")),
      h(
        "div",
        { class: "missed-body" },
        h("p", { class: "missed-text", lang: group.language }, group.text),
        h(
          "div",
          { class: "missed-meta" },
          h("span", {}, `${group.customers} ${group.customers === 1 ? "customer" : "customers"}`),
          h("span", { title: formatDateTime(group.last_seen) }, `last ${relative(group.last_seen)}`),
          h("span", {}, group.language),
          reasons,
        ),
        others.length ? h("ul", { class: "missed-examples", "aria-label": "Other wordings" }, others.map((text) => h("li", { lang: group.language }, text))) : null,
      ),
    ),
  );
  if (state.admin) {
    const dismiss = h("button", { type: "button", class: "btn btn-ghost btn-small dismiss" }, "Dismiss");
    dismiss.addEventListener("click", async () => {
      try {
        await post("/missed/dismiss", { missed_ids: group.ids });
        toast("Dismissed.", { kind: "success" });
        await load();
      } catch (error) {
        toastError(error);
      }
    });
    card.append(h("div", { class: "missed-actions" }, faqForm(group), aliasForm(group), h("div", {}, dismiss)));
  }
  return card;
}

async function load() {
  if (state.loading) return;
  state.loading = true;
  const list = $("#missed-list");
  const error = $("#missed-error");
  try {
    const page = await get(`/missed${query(filters())}`);
    replaceChildren(list, page.groups.map(groupCard));
    $("#missed-empty").hidden = page.groups.length > 0;
    const groups = page.groups.length;
    $("#missed-summary").textContent =
      `${page.total} missed ${page.total === 1 ? "question" : "questions"} in ${groups} ${groups === 1 ? "group" : "groups"} since ${formatDateTime(page.since)}` +
      (page.truncated ? " (the newest were grouped)" : "");
    error.hidden = true;
  } catch (err) {
    error.textContent = err.message;
    error.hidden = false;
  } finally {
    state.loading = false;
    list.setAttribute("aria-busy", "false");
  }
}

function additionItem(item) {
  const what = item.kind === "faq_phrasing" ? `phrasing of ${item.target}` : `alias of ${item.target}`;
  const remove = state.admin
    ? h("button", { type: "button", class: "btn btn-ghost btn-small", "aria-label": `Remove ${item.text}` }, "Remove")
    : null;
  if (remove) {
    remove.addEventListener("click", async () => {
      if (!confirm(`Remove "${item.text}"? The bot stops using it at once.`)) return;
      try {
        await del(`/knowledge/additions/${item.id}`);
        await loadAdditions();
      } catch (error) {
        toastError(error);
      }
    });
  }
  return h(
    "li",
    { dataset: { id: String(item.id) } },
    h("span", { class: "addition-text", lang: item.language }, item.text),
    h("span", { class: "addition-target" }, `${what} (${item.language})`),
    item.active ? null : h("span", { class: "addition-inactive", title: "The shop's files contradict it since it was added" }, "not in use"),
    remove,
  );
}

async function loadAdditions() {
  try {
    const items = await get("/knowledge/additions");
    replaceChildren($("#additions-list"), items.length ? items.map(additionItem) : h("li", { class: "muted" }, "Nothing yet."));
  } catch (error) {
    toastError(error);
  }
}

export async function initMissed() {
  state.admin = $("#missed-list").dataset.admin === "yes";
  const params = new URLSearchParams(location.search);
  if (params.get("days")) $("#m-days").value = params.get("days");
  try {
    state.targets = await get("/missed/targets");
  } catch (error) {
    $("#missed-error").textContent = error.message;
    $("#missed-error").hidden = false;
    return;
  }
  replaceChildren(
    $("#m-language"),
    h("option", { value: "" }, "All"),
    state.targets.languages.map((lang) => h("option", { value: lang, selected: params.get("language") === lang }, lang)),
  );
  $("#missed-filters").addEventListener("change", () => {
    const url = new URL(location.href);
    for (const [key, value] of Object.entries(filters())) {
      if (value) url.searchParams.set(key, value);
      else url.searchParams.delete(key);
    }
    history.replaceState(null, "", url);
    load();
  });
  const reload = debounce(() => Promise.all([load(), loadAdditions()]), 300);
  onDeskEvent((event) => {
    if (event.kind === "knowledge_changed" || event.kind === "__reconnected") reload();
  });
  await Promise.all([load(), loadAdditions()]);
}
