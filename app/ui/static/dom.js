// Small DOM and fetch helpers. Text always goes in as text nodes: nothing here parses HTML.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  node.append(...children.map((c) => (c instanceof Node ? c : String(c ?? ""))));
  return node;
}

const SVG_NS = "http://www.w3.org/2000/svg";

export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  node.append(...children.map((c) => (c instanceof Node ? c : String(c ?? ""))));
  return node;
}

// Swap a table's body rows; each cell gets its column's name as data-label, which the
// stylesheet shows beside the value when narrow screens stack a row into a card.
export function replaceRows(tbody, rows) {
  const head = tbody.closest("table")?.tHead;
  const names = head ? [...head.rows[head.rows.length - 1].cells].map((c) => c.textContent.trim()) : [];
  for (const row of rows) {
    [...row.cells].forEach((cell, i) => {
      if (names[i] && cell.colSpan === 1) cell.dataset.label = names[i];
    });
  }
  tbody.replaceChildren(...rows);
}

export function usd(value) {
  if (value === null || value === undefined) return "—";
  if (value === 0) return "$0";
  const digits = Math.abs(value) >= 0.01 ? 4 : Math.abs(value) >= 0.0001 ? 6 : 9;
  return "$" + value.toFixed(digits).replace(/0+$/, "").replace(/\.$/, "");
}

export function ms(value) {
  if (value === null || value === undefined) return "—";
  return value >= 1000 ? (value / 1000).toFixed(2) + " s" : value.toFixed(1) + " ms";
}

export function pct(value) {
  return value === null || value === undefined ? "—" : (value * 100).toFixed(1) + "%";
}

export function clock(ts) {
  return new Date(ts * 1000).toLocaleTimeString([], { hour12: false });
}

const CSRF = document.querySelector('meta[name="csrf-token"]')?.content ?? "";

// The console's own JSON views. Errors come back in the OpenAI envelope: throw its message.
export async function api(path, { method = "GET", body } = {}) {
  const headers = { accept: "application/json" };
  if (method !== "GET") headers["x-csrf-token"] = CSRF;
  if (body !== undefined) headers["content-type"] = "application/json";
  const reply = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (reply.status === 401 && path.startsWith("/ui/api/")) {
    window.location.assign("/ui"); // the session ended: back to the login form
  }
  return decode(reply);
}

export async function decode(reply) {
  let data = null;
  try {
    data = await reply.json();
  } catch {
    data = null;
  }
  if (!reply.ok) {
    const message = data?.error?.message ?? `HTTP ${reply.status}`;
    throw new Error(message);
  }
  return data;
}
