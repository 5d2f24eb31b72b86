// Playground: ask /v1/route as you type (candidates table), then "Send" streams the real call.
// Prompts and answers are only ever inserted as text nodes.
import { api, decode, el, ms, replaceRows, usd } from "./dom.js";

const PRESETS = JSON.parse(document.body.dataset.presets);
const MAX_IMAGE_BYTES = 8 * 1024 * 1024;
const $ = (id) => document.getElementById(id);
const form = $("play-form");
const prompt = $("prompt");
const image = $("image");
const preset = $("preset");
const weight = $("weight");
const weightValue = $("weight-value");
const maxTokens = $("max-tokens");
const apiKey = $("api-key");
const send = $("send");
const status = $("route-status");
const candidates = document.querySelector("#candidates tbody");
const chosen = $("chosen-model");
const asked = $("asked");
const answer = $("answer");
const meta = $("answer-meta");

let imageUrl = null;
let routeTimer = null;
let routeSeq = 0;
let inFlight = null;

// Slider position 0 is weight 0 (quality only); 1..100 spread weights 0.1..1000 on a log scale.
const weightAt = (p) => (p <= 0 ? 0 : 10 ** (-1 + (4 * (p - 1)) / 99));
const positionOf = (w) => (w <= 0 ? 0 : Math.min(100, Math.max(1, Math.round(1 + (99 * (Math.log10(w) + 1)) / 4))));
const roundWeight = (w) => (w === 0 ? 0 : Number(w.toPrecision(3)));

function costWeight() {
  return preset.value ? PRESETS[preset.value] : roundWeight(weightAt(Number(weight.value)));
}

function showWeight() {
  weightValue.textContent = String(costWeight());
}

function preferences() {
  return preset.value ? { preset: preset.value } : { cost_weight: costWeight() };
}

function requestBody(extra = {}) {
  const text = prompt.value;
  const content = imageUrl
    ? [{ type: "text", text }, { type: "image_url", image_url: { url: imageUrl } }]
    : text;
  const limit = Number.parseInt(maxTokens.value, 10);
  return {
    model: "auto",
    messages: [{ role: "user", content }],
    ...(limit > 0 ? { max_tokens: limit } : {}),
    switchboard: preferences(),
    ...extra,
  };
}

function headers() {
  const h = { "content-type": "application/json" };
  if (apiKey.value.trim()) h.authorization = "Bearer " + apiKey.value.trim();
  return h;
}

function eligibility(c) {
  if (!c.eligible) return "no: " + c.reason;
  return c.reason === "chosen" ? "yes (chosen)" : "yes (" + c.reason + ")";
}

function renderDecision(decision) {
  chosen.textContent = decision.model ?? "no eligible model";
  replaceRows(candidates, decision.candidates.map((c) => {
    const isChosen = c.model === decision.model;
    return el("tr", { class: isChosen ? "chosen" : c.eligible ? "" : "ineligible", "data-model": c.model },
      el("th", { scope: "row" }, c.model),
      el("td", { class: "num" }, c.quality === null ? "—" : c.quality.toFixed(3)),
      el("td", { class: "num" }, usd(c.cost_usd)),
      el("td", { class: "num" }, c.utility === null ? "—" : c.utility.toFixed(4)),
      el("td", {}, eligibility(c)));
  }));
  const needs = decision.capabilities.length ? decision.capabilities.join(", ") : "text only";
  status.textContent = `needs: ${needs}; cost weight ${decision.cost_weight}`;
}

async function routeNow() {
  if (!prompt.value.trim() && !imageUrl) {
    replaceRows(candidates, []);
    chosen.textContent = "none yet";
    status.textContent = "";
    return;
  }
  inFlight?.abort();
  inFlight = new AbortController();
  const seq = ++routeSeq;
  try {
    const reply = await fetch("/v1/route", {
      method: "POST", headers: headers(), body: JSON.stringify(requestBody()), signal: inFlight.signal,
    });
    const decision = await decode(reply);
    if (seq === routeSeq) renderDecision(decision);
  } catch (error) {
    if (error.name !== "AbortError" && seq === routeSeq) status.textContent = error.message;
  }
}

function routeSoon() {
  clearTimeout(routeTimer);
  routeTimer = setTimeout(routeNow, 250);
}

function addMeta(term, value) {
  meta.append(el("dt", {}, term), el("dd", { "data-field": term.toLowerCase() }, value));
}

async function readStream(body, onText) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let usage = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return usage;
    buffer += value;
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") return usage;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new Error(chunk.error.message);
        if (chunk.usage) usage = chunk.usage;
        for (const choice of chunk.choices ?? []) if (choice.delta?.content) onText(choice.delta.content);
      }
    }
  }
}

// A streamed reply's cost is known only once it ends: read it from the decision log.
async function recordedCost(decisionId) {
  for (let attempt = 0; attempt < 6; attempt += 1) {
    try {
      const log = await api("/ui/api/decisions?limit=50");
      const entry = log.data.find((e) => e.decision_id === decisionId);
      if (entry) return entry;
    } catch {
      return null;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return null;
}

async function sendNow(event) {
  event.preventDefault();
  if (!prompt.value.trim() && !imageUrl) {
    status.textContent = "Type a prompt first.";
    prompt.focus();
    return;
  }
  send.disabled = true;
  asked.textContent = prompt.value;
  answer.textContent = "";
  answer.classList.remove("error");
  answer.setAttribute("aria-busy", "true");
  meta.replaceChildren();
  try {
    const body = requestBody({ stream: true, stream_options: { include_usage: true } });
    const reply = await fetch("/v1/chat/completions", { method: "POST", headers: headers(), body: JSON.stringify(body) });
    if (!reply.ok) await decode(reply);
    const h = reply.headers;
    const decisionId = h.get("x-switchboard-decision-id");
    addMeta("Model", h.get("x-switchboard-model") ?? "—");
    addMeta("Overhead", ms(Number(h.get("x-switchboard-overhead-ms"))));
    addMeta("Fallbacks", h.get("x-switchboard-fallbacks") || "none");
    addMeta("Decision", decisionId ?? "—");
    const usage = await readStream(reply.body, (text) => answer.append(text));
    if (usage) addMeta("Tokens", `${usage.prompt_tokens} in, ${usage.completion_tokens} out`);
    const entry = decisionId ? await recordedCost(decisionId) : null;
    addMeta("Cost", entry ? usd(entry.cost_usd) : "not recorded");
    if (entry && entry.strongest_model && entry.strongest_model !== entry.model) {
      addMeta("On the strongest model", `${usd(entry.strongest_cost_usd)} (${entry.strongest_model})`);
    }
  } catch (error) {
    answer.classList.add("error");
    answer.append(error.message);
  } finally {
    send.disabled = false;
    answer.setAttribute("aria-busy", "false");
  }
}

function readImage() {
  imageUrl = null;
  const file = image.files[0];
  if (!file) return routeSoon();
  if (file.size > MAX_IMAGE_BYTES) {
    status.textContent = "The image is larger than 8 MB.";
    image.value = "";
    return routeSoon();
  }
  const reader = new FileReader();
  reader.addEventListener("load", () => {
    imageUrl = String(reader.result);
    routeSoon();
  });
  reader.readAsDataURL(file);
}

export function startPlayground() {
  preset.value = document.body.dataset.defaultPreset in PRESETS ? document.body.dataset.defaultPreset : "balanced";
  weight.value = String(positionOf(PRESETS[preset.value]));
  showWeight();
  prompt.addEventListener("input", routeSoon);
  maxTokens.addEventListener("change", routeSoon);
  apiKey.addEventListener("change", routeSoon);
  image.addEventListener("change", readImage);
  preset.addEventListener("change", () => {
    if (preset.value) weight.value = String(positionOf(PRESETS[preset.value]));
    showWeight();
    routeSoon();
  });
  weight.addEventListener("input", () => {
    preset.value = "";
    showWeight();
    routeSoon();
  });
  form.addEventListener("submit", sendNow);
}
