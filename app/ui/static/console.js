// Entry point: the tabs (ARIA tab pattern, arrow keys move between them) and the polling loop.
// Live updates poll the JSON views while their tab is shown and the page is visible.
import { startPlayground } from "./playground.js";
import { refreshLive, startLive } from "./live.js";
import { refreshSavings } from "./savings.js";
import { refreshCatalog, startKeys } from "./catalog.js";

const REFRESH = {
  playground: null,
  live: { every: 2000, run: refreshLive },
  savings: { every: 10000, run: refreshSavings },
  catalog: { every: 5000, run: refreshCatalog },
};

const tabs = [...document.querySelectorAll('[role="tab"]')];
let active = "playground";
let timer = null;

function show(tab, focus = false) {
  for (const other of tabs) {
    const selected = other === tab;
    other.setAttribute("aria-selected", String(selected));
    other.tabIndex = selected ? 0 : -1;
    document.getElementById(other.getAttribute("aria-controls")).hidden = !selected;
  }
  if (focus) tab.focus();
  active = tab.getAttribute("aria-controls");
  if (window.location.hash !== "#" + active) history.replaceState(null, "", "#" + active);
  schedule(true);
}

async function tick() {
  const job = REFRESH[active];
  if (!job || document.visibilityState !== "visible") return;
  try {
    await job.run();
  } catch (error) {
    console.warn("refresh failed:", error.message);
  }
}

function schedule(now) {
  clearTimeout(timer);
  const job = REFRESH[active];
  if (!job) return;
  const loop = async () => {
    await tick();
    timer = setTimeout(loop, job.every);
  };
  timer = setTimeout(loop, now ? 0 : job.every);
}

for (const tab of tabs) {
  tab.addEventListener("click", () => show(tab));
  tab.addEventListener("keydown", (event) => {
    const i = tabs.indexOf(tab);
    const next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[event.key];
    if (next === undefined) return;
    event.preventDefault();
    show(tabs[(next + tabs.length) % tabs.length], true);
  });
}
document.addEventListener("visibilitychange", () => schedule(true));

startPlayground();
startLive(() => schedule(true));
startKeys();
const initial = tabs.find((t) => "#" + t.getAttribute("aria-controls") === window.location.hash);
show(initial ?? tabs[0]);
