// impasto studio: the page of `impasto serve`. Plain JavaScript, no build step.
//
// The controls are built from GET /api/options (the same TransferConfig as the command line; the
// server says which group each goes in and its label, so this page names no option), a
// job is created with POST /api/jobs and followed through its Server-Sent Events. Everything a
// client sent is shown with textContent, never as HTML.
"use strict";

const FINISHED = new Set(["done", "failed", "cancelled"]);
const $ = (id) => document.getElementById(id);
const state = {
  info: null,       // GET /api/options
  resolved: null,   // {alpha, beta, stages}: the options chosen, as the server resolves them
  submitting: false,
  running: false,   // the job on the stage is queued or running
  content: null,    // {file} or {example}, with a url for the thumbnail
  styles: [],
  job: null,        // id of the job on the stage
  source: null,     // its EventSource
  shownPreview: null,
};

// --- options -----------------------------------------------------------------------------------

function field(opt) {
  const wrap = document.createElement("div");
  wrap.className = "field";
  const label = document.createElement("label");
  label.htmlFor = "opt-" + opt.name;
  label.textContent = opt.label;
  let input;
  if (opt.type === "boolean") {
    input = document.createElement("input");
    input.type = "checkbox";
    input.checked = opt.default === true;
    wrap.classList.add("check");
  } else if (opt.choices) {
    input = document.createElement("select");
    for (const c of opt.choices) {
      const o = document.createElement("option");
      o.value = o.textContent = c;
      input.append(o);
    }
  } else {
    input = document.createElement("input");
    input.type = opt.type === "integer" || opt.type === "number" ? "number" : "text";
    if (opt.type === "number") input.step = "any";
  }
  input.id = "opt-" + opt.name;
  input.name = opt.name;
  input.dataset.type = opt.type;
  input.dataset.default = opt.default === null ? "" : String(opt.default);
  if (opt.type !== "boolean") input.value = input.dataset.default;
  if (opt.default === null && opt.type !== "boolean") {
    input.placeholder = opt.name === "seed" ? "random" : "default";
  }
  for (const bound of ["min", "max", "step"]) {
    if (opt[bound] !== null && opt[bound] !== undefined) input[bound] = opt[bound];
  }
  const tip = document.createElement("small");
  tip.className = "tip";
  tip.id = "tip-" + opt.name;
  tip.textContent = opt.tip;
  input.setAttribute("aria-describedby", tip.id);
  input.addEventListener("change", resolveSoon);
  if (opt.type === "boolean") wrap.append(input, label, tip); else wrap.append(label, input, tip);
  return wrap;
}

function buildOptions() {
  // The server says where each option goes; "slider" ones (α, β) are set by the slider.
  const boxes = { main: $("main-options"), more: $("more-options") };
  for (const opt of state.info.options) boxes[opt.group]?.append(field(opt));
  for (const input of document.querySelectorAll(".field input[type=number], .field input[type=text]")) {
    input.addEventListener("input", resolveSoon);
  }
  $("strength").addEventListener("input", showRatio);
}

// The balance slider, 0..1000: the middle is the default β of the options chosen (the server
// resolves it: it follows the size, the preset and the network); each end is that β divided
// ("more photo", left) or multiplied ("more painting", right) by 10^decades. β grows, and α/β
// falls, from left to right.
const MIDDLE = 500;
function sliderBeta(v) {
  const r = state.resolved;
  const decades = state.info.style_strength.decades;
  const beta = r.beta * 10 ** (decades * (v - MIDDLE) / MIDDLE);
  return Number(beta.toPrecision(3)); // what is sent, and what the label shows
}
function sentWeights() {
  // [α, β] the job will run with: the server's own when the slider is in the middle.
  const v = Number($("strength").value);
  const r = state.resolved;
  if (!r) return null;
  return v === MIDDLE ? [r.alpha, r.beta] : [r.alpha, sliderBeta(v)];
}
const SUPERSCRIPT = { "-": "⁻", 0: "⁰", 1: "¹", 2: "²", 3: "³", 4: "⁴", 5: "⁵", 6: "⁶", 7: "⁷", 8: "⁸", 9: "⁹" };
function ratioText(r) {
  if (r === 0) return "α/β = 0";
  if (!Number.isFinite(r)) return "α/β = ∞ (photo only)";
  const [mantissa, exponent] = r.toExponential(1).split("e");
  const power = "10" + [...String(Number(exponent))].map((c) => SUPERSCRIPT[c]).join("");
  return `α/β = ${mantissa === "1.0" ? "" : mantissa + " × "}${power}`;
}
function showRatio() {
  const w = sentWeights();
  const out = $("ratio");
  if (!w) { out.textContent = "α/β = …"; return; }
  const [alpha, beta] = w;
  out.textContent = ratioText(alpha / beta);
  out.dataset.ratio = String(alpha / beta);
  out.title = `α = ${alpha}, β = ${beta}`;
}

// Ask the server what the chosen options resolve to (the default β follows them).
let resolveTimer = null;
function resolveSoon() {
  clearTimeout(resolveTimer);
  document.body.dataset.resolved = "";
  resolveTimer = setTimeout(resolve, 150);
}
async function resolve() {
  const options = fieldOptions();
  const key = JSON.stringify(options);
  try {
    const r = await fetch("/api/options/resolve", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: key,
    });
    if (!r.ok) return; // Start shows why; the slider keeps the last β it had
    const body = await r.json();
    if (JSON.stringify(fieldOptions()) !== key) return; // a later change is on its way
    state.resolved = {
      alpha: body.options.content_weight,
      beta: body.options.style_weight,
      stages: body.stages,
    };
    showRatio();
    document.body.dataset.resolved = key;
  } catch (err) {
    // the server is gone: Start will say so
  }
}

function fieldOptions() {
  // The options given in the fields (those left at their default are left to the server).
  const options = {};
  for (const input of document.querySelectorAll(".field input, .field select")) {
    const t = input.dataset.type;
    if (t === "boolean") {
      if (String(input.checked) !== input.dataset.default) options[input.name] = input.checked;
      continue;
    }
    const raw = input.value.trim();
    if (raw === input.dataset.default) continue; // the server's default stays in charge
    if (raw === "") { options[input.name] = null; continue; }
    options[input.name] = t === "integer" || t === "number" ? Number(raw) : raw;
  }
  return options;
}

function collectOptions() {
  const options = fieldOptions();
  // In the middle, the slider leaves α and β to the server's defaults (β follows the size).
  if (Number($("strength").value) !== MIDDLE && state.resolved) {
    const [alpha, beta] = sentWeights();
    options.content_weight = alpha;
    options.style_weight = beta;
  }
  return options;
}

function defaultOf(name) {
  return state.info.options.find((o) => o.name === name).default;
}

// --- the Start button (choosing the pictures: pictures.js) ---------------------------------------

// Start: disabled until there is a photo and a painting, while a job is being sent, and while
// the job on the stage runs (one press, one job); "Start another" once it has finished.
function showStart() {
  const b = $("start");
  const ready = Boolean(state.content && state.styles.length);
  b.disabled = !ready || state.submitting || state.running;
  b.textContent = state.submitting ? "Starting…" : state.running ? "Running…" : state.job ? "Start another" : "Start";
  if (!state.job) $("status").textContent = idleStatus();
}

function idleStatus() {
  if ($("form-error").textContent) return "Not started: see the message under Start.";
  if (!state.content && !state.styles.length) return "Choose a photo and a painting, then Start.";
  if (!state.content) return "Now choose a photo.";
  if (!state.styles.length) return "Now choose a painting.";
  return "Ready: press Start.";
}

// --- jobs --------------------------------------------------------------------------------------

function problem(body, status) {
  const d = body && body.detail;
  if (typeof d === "string") return d;
  if (Array.isArray(d)) return d.map((x) => `${(x.loc || []).slice(-1)[0]}: ${x.msg}`).join("; ");
  return `the server answered ${status}`;
}

async function start(e) {
  e.preventDefault();
  if (state.submitting || state.running || !state.content || !state.styles.length) return;
  $("form-error").textContent = "";
  state.submitting = true; // the masks take a moment to encode: no second job meanwhile
  showStart();
  const form = new FormData();
  const c = state.content;
  if (c.file) form.append("content", c.file); else form.append("content_example", c.example);
  for (const s of state.styles) {
    if (s.file) form.append("styles", s.file); else form.append("style_examples", s.example);
  }
  try {
    const regionsProblem = await window.regions.appendMasks(form, state.styles);
    if (regionsProblem) { $("form-error").textContent = regionsProblem; return; }
    form.append("options", JSON.stringify(collectOptions()));
    form.append("client_token", crypto.randomUUID ? crypto.randomUUID() : String(Math.random()));
    const r = await fetch("/api/jobs", { method: "POST", body: form });
    const body = await r.json().catch(() => null);
    if (!r.ok) { $("form-error").textContent = problem(body, r.status); return; }
    watch(body.id, body);
    refreshRecent();
    // On a phone (one column) the stage is below the form: bring it into view.
    if (window.matchMedia("(max-width: 860px)").matches) $("stage").scrollIntoView({ block: "start" });
  } catch (err) {
    $("form-error").textContent = "could not reach the server: " + err.message;
  } finally {
    state.submitting = false;
    showChoices();
  }
}

function watch(id, first) {
  if (state.source) state.source.close();
  state.job = id;
  state.running = first ? !FINISHED.has(first.state) : true;
  state.shownPreview = null;
  $("progress").dataset.seen = "";
  $("job-error").textContent = "";
  if (first) render(first);
  const source = new EventSource(`/api/jobs/${id}/events`);
  state.source = source;
  source.onmessage = (ev) => {
    const s = JSON.parse(ev.data);
    render(s);
    if (FINISHED.has(s.state)) { source.close(); refreshRecent(); }
  };
  source.onerror = async () => {
    // EventSource reconnects by itself (resuming after the last event); when it has given up,
    // ask once for the status: the job may have been forgotten, or have ended meanwhile.
    if (source.readyState !== EventSource.CLOSED || state.job !== id) return;
    try {
      const r = await fetch(`/api/jobs/${id}`);
      if (r.ok) render(await r.json());
    } catch (err) {
      $("job-error").textContent = LOST_SERVER;
    }
  };
  markCurrent();
  showStart();
}

function fmt(x) {
  if (x === null || x === undefined) return "–";
  return x === 0 ? "0" : Number(x).toPrecision(3);
}

function render(s) {
  if (s.id !== state.job) return;
  const badge = $("badge");
  badge.hidden = false;
  badge.textContent = shownState(s);
  badge.className = "badge " + shownState(s);
  let text;
  if (s.state === "queued") {
    text = s.position === 1 ? "Waiting: next in line." : `Waiting: number ${s.position} in line.`;
  } else if (s.state === "running") {
    const stage = s.stages > 1 ? ` (stage ${s.stage} of ${s.stages})` : "";
    text = `Iteration ${s.iteration} of ${s.iterations}${stage}` +
      (s.cancel_requested ? ", cancelling…" : "");
  } else if (s.state === "done") {
    text = `Done: ${s.iteration} iterations.`;
  } else if (s.interrupted) {
    text = s.started
      ? `Interrupted by a server stop at iteration ${s.iteration} of ${s.iterations}.`
      : "Interrupted by a server stop before it started.";
  } else if (s.state === "cancelled") {
    text = `Cancelled at iteration ${s.iteration} of ${s.iterations}` + (s.error ? ` (${s.error}).` : ".");
  } else {
    text = "Failed.";
  }
  $("status").textContent = text;
  $("job-error").textContent = s.state === "failed" ? s.error : "";
  const progress = $("progress");
  progress.max = Math.max(1, s.iterations);
  progress.value = s.iteration;
  const seen = progress.dataset.seen ? progress.dataset.seen.split(",") : [];
  if (!seen.includes(String(s.iteration))) seen.push(String(s.iteration));
  progress.dataset.seen = seen.join(",");
  showLosses(s);
  $("elapsed").textContent = s.started ? clock(s.elapsed) : "–";
  $("eta").textContent = s.state === "running" && s.eta !== null && s.eta !== undefined
    ? "about " + clock(s.eta) : s.state === "done" ? "0:00" : "–";
  $("seed").textContent = s.seed === null || s.seed === undefined ? "–" : String(s.seed);
  const picture = FINISHED.has(s.state) && s.result_url ? s.result_url : s.preview_url;
  if (picture && picture !== state.shownPreview) {
    state.shownPreview = picture;
    const img = $("preview");
    img.src = picture;
    img.hidden = false;
    img.dataset.state = s.state;
    $("placeholder").hidden = true;
  } else if (!picture && !state.shownPreview) {
    $("preview").hidden = true;
    $("placeholder").hidden = false;
  }
  $("cancel").disabled = FINISHED.has(s.state) || s.cancel_requested;
  $("rerun").hidden = !(s.interrupted && s.rerun_url);
  const dl = $("download");
  dl.hidden = !s.result_url;
  if (s.result_url) {
    dl.href = s.result_url;
    dl.download = s.download_name;
  }
  const running = !FINISHED.has(s.state);
  if (running !== state.running) { state.running = running; showStart(); }
}

// The loss and each of its terms: the boxes add up to the loss (every term the server sends).
const TERM_NAMES = { content: "photo", style: "painting", tv: "smoothing", temporal: "temporal" };
function showLosses(s) {
  const box = $("losses");
  const terms = s.terms || {};
  const names = Object.keys(terms);
  const wanted = ["loss", ...names].join(",");
  if (box.dataset.terms !== wanted) {
    box.replaceChildren();
    for (const [i, name] of ["loss", ...names].entries()) {
      const div = document.createElement("div");
      const dt = document.createElement("dt");
      dt.textContent = i === 0 ? "loss =" : (i === 1 ? "" : "+ ") + (TERM_NAMES[name] || name);
      dt.title = i === 0 ? "the objective: the sum of the terms" : `the ${name} term, weighted`;
      const dd = document.createElement("dd");
      dd.id = i === 0 ? "loss" : "term-" + name;
      div.append(dt, dd);
      box.append(div);
    }
    box.dataset.terms = wanted;
  }
  $("loss").textContent = fmt(s.loss);
  for (const name of names) $("term-" + name).textContent = fmt(terms[name]);
}

function clock(seconds) {
  const t = Math.round(seconds);
  if (t < 60) return `${t} s`;
  const m = Math.floor(t / 60), sec = String(t % 60).padStart(2, "0");
  if (m < 60) return `${m}:${sec}`;
  return `${Math.floor(m / 60)}:${String(m % 60).padStart(2, "0")}:${sec}`;
}

const LOST_SERVER = "lost the server (stopped?); reload the page once it runs again";

// A job a server stop cut short is shown as "interrupted" (its state is cancelled).
function shownState(s) {
  return s.interrupted ? "interrupted" : s.state;
}

async function rerun(s) {
  $("form-error").textContent = "";
  let r;
  try {
    r = await fetch(s.rerun_url, { method: "POST" });
  } catch (err) {
    $("job-error").textContent = LOST_SERVER;
    return;
  }
  const body = await r.json().catch(() => null);
  if (!r.ok) { $("job-error").textContent = problem(body, r.status); return; }
  watch(body.id, body);
  refreshRecent();
}

async function cancel() {
  if (!state.job) return;
  $("cancel").disabled = true;
  try {
    const r = await fetch(`/api/jobs/${state.job}/cancel`, { method: "POST" });
    if (r.ok) render(await r.json());
  } catch (err) {
    $("job-error").textContent = LOST_SERVER;
  }
}

// --- recent results ----------------------------------------------------------------------------

async function refreshRecent() {
  // Called when a job ends, which is also when a stopping server ends its jobs: a list that
  // cannot be fetched now is left as it is (the page says so once the job's stream gives up).
  let jobs;
  try {
    const r = await fetch("/api/jobs");
    if (!r.ok) return;
    jobs = await r.json();
  } catch (err) {
    return;
  }
  const list = $("recent");
  list.replaceChildren(...jobs.map(card));
  $("recent-empty").hidden = jobs.length > 0;
  markCurrent();
  return jobs;
}

function card(s) {
  const li = document.createElement("li");
  li.dataset.id = s.id;
  li.title = "show this job";
  const url = s.result_url || s.preview_url;
  let pic;
  if (url) {
    pic = document.createElement("img");
    pic.src = url;
    pic.alt = "";
  } else {
    pic = document.createElement("div");
    pic.className = "blank";
    if (FINISHED.has(s.state)) pic.textContent = s.started ? "no image" : "not started";
  }
  const title = document.createElement("p");
  title.className = "name";
  title.textContent = `${s.content} × ${s.styles.join(", ")}`;
  title.title = title.textContent; // the whole name on hover too, however it is wrapped
  const st = document.createElement("p");
  st.className = "state";
  st.textContent = `${shownState(s)} · ${s.options.size} px · ${s.iteration}/${s.iterations}`;
  const actions = document.createElement("div");
  actions.className = "card-actions";
  if (s.interrupted && s.rerun_url) {
    const again = document.createElement("button");
    again.type = "button";
    again.className = "rerun";
    again.textContent = "Run again";
    again.addEventListener("click", (e) => { e.stopPropagation(); rerun(s); });
    actions.append(again);
  }
  if (s.result_url) {
    const a = document.createElement("a");
    a.href = s.result_url;
    a.download = s.download_name;
    a.textContent = "download";
    a.addEventListener("click", (e) => e.stopPropagation());
    actions.append(a);
  }
  li.append(pic, title, st, actions);
  li.addEventListener("click", () => watch(s.id, s));
  return li;
}

function markCurrent() {
  for (const li of document.querySelectorAll("#recent li")) {
    li.classList.toggle("current", li.dataset.id === state.job);
  }
}

// --- start -------------------------------------------------------------------------------------

async function main() {
  const r = await fetch("/api/options");
  state.info = await r.json();
  buildOptions();
  buildExamples();
  wireDrops();
  showChoices();
  await resolve();
  $("job-form").addEventListener("submit", start);
  $("cancel").addEventListener("click", cancel);
  $("rerun").addEventListener("click", async () => {
    try {
      const r = await fetch(`/api/jobs/${state.job}`);
      if (r.ok) rerun(await r.json());
    } catch (err) {
      $("job-error").textContent = LOST_SERVER;
    }
  });
  const jobs = await refreshRecent();
  // After a reload, follow the job that is running (or waiting), if any.
  const active = (jobs || []).find((s) => !FINISHED.has(s.state));
  if (active) watch(active.id, active);
  document.body.dataset.ready = "1";
}

main().catch((err) => {
  $("form-error").textContent = "could not load the options: " + err.message;
});
