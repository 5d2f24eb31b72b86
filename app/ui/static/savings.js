// Savings: spend as routed vs. every call on its strongest model, from the store's counters.
import { api, clock, el, pct, svg, usd } from "./dom.js";

const summary = document.getElementById("savings-summary");
const chart = document.getElementById("savings-chart");
const models = document.getElementById("savings-models");
const LABELS = { hour: "Last hour", day: "Last 24 hours" };

function card(name, w) {
  const share = w.strongest_cost_usd > 0 ? w.saved_usd / w.strongest_cost_usd : null;
  return el("div", { class: "stat", "data-window": name },
    el("h3", {}, LABELS[name]),
    el("dl", {},
      el("dt", {}, "Calls"), el("dd", {}, String(w.calls)),
      el("dt", {}, "Spent, as routed"), el("dd", {}, usd(w.cost_usd)),
      el("dt", {}, "All to the strongest model"), el("dd", {}, usd(w.strongest_cost_usd)),
      el("dt", {}, "Saved"), el("dd", { class: "saved" }, `${usd(w.saved_usd)}${share === null ? "" : " (" + pct(share) + ")"}`)));
}

// Hourly bars over the day: routed spend next to what the strongest models would have cost.
function timeline(points) {
  const width = Math.max(320, Math.round(chart.clientWidth || 720));
  const height = 180;
  const pad = { left: 64, right: 8, top: 12, bottom: 28 };
  const top = Math.max(1e-9, ...points.map((p) => Math.max(p.cost_usd, p.strongest_cost_usd)));
  const slot = (width - pad.left - pad.right) / points.length;
  const bar = Math.max(1, slot / 2 - 1);
  const y = (v) => pad.top + (height - pad.top - pad.bottom) * (1 - v / top);
  const saved = points.reduce((s, p) => s + p.strongest_cost_usd - p.cost_usd, 0);
  const root = svg("svg", {
    viewBox: `0 0 ${width} ${height}`, role: "img", class: "bars",
    "aria-label": `Hourly spend over the last day; routing saved ${usd(saved)} against the strongest models.`,
  });
  root.append(
    svg("line", { x1: pad.left, x2: width - pad.right, y1: y(0), y2: y(0), class: "axis" }),
    svg("text", { x: pad.left - 6, y: y(top) + 4, class: "tick", "text-anchor": "end" }, usd(top)),
    svg("text", { x: pad.left - 6, y: y(0), class: "tick", "text-anchor": "end" }, "$0"));
  points.forEach((p, i) => {
    const x = pad.left + i * slot;
    for (const [value, cls, dx] of [[p.strongest_cost_usd, "strongest", 0], [p.cost_usd, "routed", bar + 1]]) {
      const rect = svg("rect", { x: x + dx, y: y(value), width: bar, height: y(0) - y(value), class: cls });
      rect.append(svg("title", {}, `${clock(p.start)}: ${cls === "routed" ? "routed" : "strongest"} ${usd(value)}, ${p.calls} calls`));
      root.append(rect);
    }
    if (i % 6 === 0) root.append(svg("text", { x: x, y: height - 8, class: "tick" }, clock(p.start).slice(0, 5)));
  });
  const legend = el("p", { class: "legend" },
    el("span", { class: "swatch strongest" }), " all to the strongest model  ",
    el("span", { class: "swatch routed" }), " as routed");
  return [root, legend];
}

function table(windows) {
  const names = new Set();
  for (const w of Object.values(windows)) for (const m of w.models) names.add(m.model);
  const find = (w, model) => w.models.find((m) => m.model === model) ?? { calls: 0, share: 0, cost_usd: 0 };
  const rows = [...names].map((model) => el("tr", { "data-model": model },
    el("th", { scope: "row" }, model),
    ...["hour", "day"].flatMap((name) => {
      const m = find(windows[name], model);
      return [
        el("td", { class: "num" }, String(m.calls)),
        el("td", {}, el("meter", { min: 0, max: 1, value: m.share, "aria-label": `${model} share, ${LABELS[name]}` }), " ", pct(m.share)),
        el("td", { class: "num" }, usd(m.cost_usd)),
      ];
    })));
  return el("div", { class: "table-wrap", tabindex: 0, role: "region", "aria-label": "Traffic per model" },
    el("table", {},
      el("thead", {},
        el("tr", {}, el("td"), el("th", { scope: "colgroup", colspan: 3 }, LABELS.hour), el("th", { scope: "colgroup", colspan: 3 }, LABELS.day)),
        el("tr", {}, el("th", { scope: "col" }, "Model"),
          ...["hour", "day"].flatMap(() => [el("th", { scope: "col" }, "Calls"), el("th", { scope: "col" }, "Share"), el("th", { scope: "col" }, "Spend")]))),
      el("tbody", {}, ...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 7 }, "No traffic yet."))]))));
}

export async function refreshSavings() {
  const data = await api("/ui/api/savings");
  summary.replaceChildren(card("hour", data.windows.hour), card("day", data.windows.day));
  chart.replaceChildren(...timeline(data.timeline));
  models.replaceChildren(table(data.windows));
}
