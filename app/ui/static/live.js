// Live decisions: the newest entries of the shared decision log, polled while the tab is shown.
import { api, clock, el, ms, replaceRows, usd } from "./dom.js";

const filter = document.getElementById("live-model");
const tbody = document.querySelector("#decisions tbody");
const status = document.getElementById("live-status");
const known = new Set();

function row(d) {
  const model = d.error ? `${d.model ?? "none"} (failed: ${d.error})` : d.model ?? "—";
  return el("tr", { "data-model": d.model ?? "", class: d.error ? "failed" : "" },
    el("td", {}, el("time", { datetime: new Date(d.ts * 1000).toISOString() }, clock(d.ts))),
    el("td", {}, d.key ?? "anonymous"),
    el("th", { scope: "row" }, model),
    el("td", {}, d.capabilities.length ? d.capabilities.join(", ") : "text"),
    el("td", { class: "num" }, ms(d.latency_ms)),
    el("td", { class: "num" }, ms(d.overhead_ms)),
    el("td", { class: "num" }, usd(d.cost_usd)),
    el("td", {}, d.fallbacks.length ? d.fallbacks.join(", ") : "—"),
    el("td", {}, d.cache_hit ? "hit" : "—"));
}

function addModels(models) {
  for (const model of models) {
    if (!model || known.has(model)) continue;
    known.add(model);
    filter.append(el("option", { value: model }, model));
  }
}

export async function refreshLive() {
  const query = new URLSearchParams({ limit: "100" });
  if (filter.value) query.set("model", filter.value);
  const log = await api("/ui/api/decisions?" + query);
  addModels(log.models);
  addModels(log.data.map((d) => d.model));
  replaceRows(tbody, log.data.length
    ? log.data.map(row)
    : [el("tr", {}, el("td", { colspan: 9 }, "No routed calls yet."))]);
  const what = filter.value ? `calls to ${filter.value}` : "calls";
  status.textContent = `${log.data.length} most recent ${what}, updated ${clock(Date.now() / 1000)}`;
}

export function startLive(onFilter) {
  filter.addEventListener("change", onFilter);
}
