// Catalog: availability, breakers and observed latency per model; API keys when keys are on.
import { api, el, ms, pct, replaceRows, usd } from "./dom.js";

const models = document.querySelector("#models tbody");
const keysOn = document.body.dataset.keys === "true";
const keysCard = document.getElementById("keys-card");
const keys = document.querySelector("#keys tbody");
const keyForm = document.getElementById("key-form");
const keyStatus = document.getElementById("key-status");
const newKey = document.getElementById("new-key");
const newKeyValue = document.getElementById("new-key-value");

function modelRow(m) {
  return el("tr", { "data-model": m.model, class: m.available ? "" : "ineligible" },
    el("th", { scope: "row" }, m.model),
    el("td", {}, m.available ? "yes" : m.reason),
    el("td", { class: "breaker-" + m.breaker }, m.breaker.replace("_", "-")),
    el("td", { class: "num" }, ms(m.p50_ms)),
    el("td", { class: "num" }, ms(m.p95_ms)),
    el("td", { class: "num" }, pct(m.error_rate)),
    el("td", { class: "num" }, String(m.calls)),
    el("td", { class: "num" }, `$${m.input_per_mtok} / $${m.output_per_mtok}`),
    el("td", {}, m.capabilities.length ? m.capabilities.join(", ") : "text"));
}

function limits(k) {
  const parts = [];
  if (k.rpm) parts.push(`${k.rpm} rpm`);
  if (k.tpm) parts.push(`${k.tpm} tpm`);
  return parts.length ? parts.join(", ") : "none";
}

function spend(k) {
  if (k.budget_usd === null) return [usd(k.spend_usd), " (no budget)"];
  const label = `${usd(k.spend_usd)} of ${usd(k.budget_usd)}`;
  return [el("meter", { min: 0, max: k.budget_usd || 1, value: k.spend_usd, "aria-label": `${k.name} spend` }), " ", label];
}

function keyRow(k) {
  const revoke = el("button", { type: "button", class: "danger", "aria-label": `Revoke ${k.name} (${k.id})` }, "Revoke");
  revoke.addEventListener("click", async () => {
    if (!window.confirm(`Revoke the key "${k.name}"? Calls with it stop at once.`)) return;
    try {
      await api(`/ui/api/keys/${encodeURIComponent(k.id)}`, { method: "DELETE" });
      keyStatus.textContent = `Revoked ${k.name}.`;
      await refreshKeys();
    } catch (error) {
      keyStatus.textContent = error.message;
    }
  });
  return el("tr", { "data-key": k.id },
    el("th", { scope: "row" }, k.name),
    el("td", {}, el("code", {}, k.id)),
    el("td", {}, limits(k)),
    el("td", {}, ...spend(k)),
    el("td", {}, new Date(k.created * 1000).toLocaleString()),
    el("td", {}, revoke));
}

async function refreshKeys() {
  const list = await api("/ui/api/keys");
  replaceRows(keys, list.data.length
    ? list.data.map(keyRow)
    : [el("tr", {}, el("td", { colspan: 6 }, "No keys yet."))]);
}

export async function refreshCatalog() {
  const list = await api("/ui/api/catalog");
  replaceRows(models, list.data.map(modelRow));
  if (keysOn) await refreshKeys();
}

const numberOrNull = (id) => {
  const value = document.getElementById(id).value.trim();
  return value === "" ? null : Number(value);
};

async function createKey(event) {
  event.preventDefault();
  const body = { name: document.getElementById("key-name").value.trim() };
  for (const [field, id] of [["rpm", "key-rpm"], ["tpm", "key-tpm"], ["budget_usd", "key-budget"]]) {
    const value = numberOrNull(id);
    if (value !== null) body[field] = value;
  }
  try {
    const created = await api("/ui/api/keys", { method: "POST", body });
    newKeyValue.textContent = created.key;
    newKey.hidden = false;
    keyStatus.textContent = `Created ${created.name}.`;
    keyForm.reset();
    await refreshKeys();
  } catch (error) {
    keyStatus.textContent = error.message;
  }
}

export function startKeys() {
  keysCard.hidden = !keysOn;
  if (keysOn) keyForm.addEventListener("submit", createKey);
}
