// Building DOM nodes safely: every string becomes a text node, never HTML.
// Customer text (and anything from the API) goes through here, so an injected
// "<script>" shows as the characters it is.

/**
 * h("a", {href: "/x", class: "btn", onclick: fn}, "text", childNode, [more])
 * Attributes starting with "on" become listeners; `dataset` and `aria` objects are spread;
 * false/null/undefined attributes and children are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === false || value === null || value === undefined) continue;
    if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === "dataset") {
      Object.assign(node.dataset, value);
    } else if (key === "class") {
      node.className = value;
    } else if (key === "text") {
      node.textContent = String(value);
    } else if (value === true) {
      node.setAttribute(key, "");
    } else {
      node.setAttribute(key, String(value));
    }
  }
  append(node, children);
  return node;
}

export function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node) {
  while (node.firstChild) node.firstChild.remove();
  return node;
}

export function replaceChildren(node, ...children) {
  clear(node);
  return append(node, children);
}

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

/** A definition list from [label, value] pairs; empty values show as an em dash. */
export function props(node, pairs) {
  clear(node);
  for (const [label, value] of pairs) {
    node.append(h("dt", {}, label));
    const shown = value === null || value === undefined || value === "" ? h("span", { class: "muted" }, "—") : value;
    node.append(h("dd", {}, shown));
  }
  return node;
}

/** Debounce: collapse a burst of live events into one reload. */
export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}
