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
  label.title = opt.help;
  let input;
  const choices = opt.type === "boolean" ? ["false", "true"] : opt.choices;
  if (choices) {
    input = document.createElement("select");
    for (const c of choices) {
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
  input.title = opt.help;
  input.dataset.type = opt.type;
  input.dataset.default = opt.default === null ? "" : String(opt.default);
  input.value = input.dataset.default;
  for (const bound of ["min", "max", "step"]) {
    if (opt[bound] !== null && opt[bound] !== undefined) input[bound] = opt[bound];
  }
  wrap.append(label, input);
  return wrap;
}

function buildOptions() {
  // The server says where each option goes; "slider" ones (α, β) are set by the slider.
  const boxes = { main: $("main-options"), more: $("more-options") };
  for (const opt of state.info.options) boxes[opt.group]?.append(field(opt));
  const s = state.info.style_strength;
  const strength = $("strength");
  strength.value = String(ratioToSlider(s.default_ratio));
  strength.addEventListener("input", showRatio);
  showRatio();
}

// Slider 0..1000, left "more photo" (α/β = max_ratio) to right "more painting" (min_ratio).
function sliderToRatio(v) {
  const s = state.info.style_strength;
  const hi = Math.log10(s.max_ratio), lo = Math.log10(s.min_ratio);
  return 10 ** (hi - (v / 1000) * (hi - lo));
}
function ratioToSlider(r) {
  const s = state.info.style_strength;
  const hi = Math.log10(s.max_ratio), lo = Math.log10(s.min_ratio);
  return Math.round(((hi - Math.log10(r)) / (hi - lo)) * 1000);
}
const SUPERSCRIPT = { "-": "⁻", 0: "⁰", 1: "¹", 2: "²", 3: "³", 4: "⁴", 5: "⁵", 6: "⁶", 7: "⁷", 8: "⁸", 9: "⁹" };
function showRatio() {
  const r = sliderToRatio(Number($("strength").value));
  const [mantissa, exponent] = r.toExponential(1).split("e");
  const power = "10" + [...String(Number(exponent))].map((c) => SUPERSCRIPT[c]).join("");
  $("ratio").textContent = `α/β = ${mantissa === "1.0" ? "" : mantissa + " × "}${power}`;
}

function collectOptions() {
  const options = {};
  const strength = Number($("strength").value);
  // Left where it starts, the slider leaves α and β to the server's defaults (β follows the size).
  if (strength !== ratioToSlider(state.info.style_strength.default_ratio)) {
    const contentWeight = defaultOf("content_weight");
    options.content_weight = contentWeight;
    options.style_weight = contentWeight / sliderToRatio(strength);
  }
  for (const input of document.querySelectorAll(".field input, .field select")) {
    const raw = input.value.trim();
    if (raw === input.dataset.default) continue; // the server's default stays in charge
    if (raw === "") { options[input.name] = null; continue; }
    const t = input.dataset.type;
    if (t === "boolean") options[input.name] = raw === "true";
    else options[input.name] = t === "integer" || t === "number" ? Number(raw) : raw;
  }
  return options;
}

function defaultOf(name) {
  return state.info.options.find((o) => o.name === name).default;
}

// --- choosing pictures -------------------------------------------------------------------------

function thumb(item, onRemove) {
  const fig = document.createElement("figure");
  fig.className = "thumb";
  fig.style.margin = "0";
  const img = document.createElement("img");
  img.src = item.url;
  img.alt = item.label;
  const cap = document.createElement("figcaption");
  cap.textContent = item.label;
  const x = document.createElement("button");
  x.type = "button";
  x.textContent = "×";
  x.title = "remove";
  x.addEventListener("click", (e) => { e.preventDefault(); e.stopPropagation(); onRemove(); });
  fig.append(img, x, cap);
  return fig;
}

function fromFile(file) {
  return { file, label: file.name, url: URL.createObjectURL(file) };
}
function fromExample(name) {
  return { example: name, label: name, url: "/api/examples/" + encodeURIComponent(name) };
}

function showChoices() {
  const c = $("content-chosen");
  c.replaceChildren();
  if (state.content) c.append(thumb(state.content, () => { state.content = null; showChoices(); }));
  const s = $("style-chosen");
  s.replaceChildren(...state.styles.map((item, i) =>
    thumb(item, () => { state.styles.splice(i, 1); showChoices(); })));
  for (const b of document.querySelectorAll("#content-examples button")) {
    b.classList.toggle("on", state.content?.example === b.dataset.name);
  }
  for (const b of document.querySelectorAll("#style-examples button")) {
    b.classList.toggle("on", state.styles.some((x) => x.example === b.dataset.name));
  }
  $("start").disabled = !(state.content && state.styles.length);
  window.regions.show(state.content, state.styles);
}

function buildExamples() {
  for (const [box, pick] of [
    [$("content-examples"), (name) => { state.content = fromExample(name); }],
    [$("style-examples"), (name) => {
      const at = state.styles.findIndex((x) => x.example === name);
      if (at >= 0) state.styles.splice(at, 1); else state.styles.push(fromExample(name));
    }],
  ]) {
    for (const name of state.info.examples) {
      const b = document.createElement("button");
      b.type = "button";
      b.dataset.name = name;
      b.title = name;
      const img = document.createElement("img");
      img.src = "/api/examples/" + encodeURIComponent(name);
      img.alt = name;
      b.append(img);
      b.addEventListener("click", () => { pick(name); showChoices(); });
      box.append(b);
    }
  }
}

function wireDrops() {
  $("content-file").addEventListener("change", (e) => {
    if (e.target.files.length) state.content = fromFile(e.target.files[0]);
    e.target.value = "";
    showChoices();
  });
  $("style-files").addEventListener("change", (e) => {
    for (const f of e.target.files) state.styles.push(fromFile(f));
    e.target.value = "";
    showChoices();
  });
  for (const [zone, take] of [
    [$("content-drop"), (files) => { state.content = fromFile(files[0]); }],
    [$("style-drop"), (files) => { for (const f of files) state.styles.push(fromFile(f)); }],
  ]) {
    zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", (e) => {
      e.preventDefault();
      zone.classList.remove("over");
      const files = [...e.dataTransfer.files].filter((f) => f.type.startsWith("image/"));
      if (files.length) { take(files); showChoices(); }
    });
  }
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
  $("form-error").textContent = "";
  const form = new FormData();
  const c = state.content;
  if (c.file) form.append("content", c.file); else form.append("content_example", c.example);
  for (const s of state.styles) {
    if (s.file) form.append("styles", s.file); else form.append("style_examples", s.example);
  }
  $("start").disabled = true; // the masks take a moment to encode: no second job meanwhile
  const regionsProblem = await window.regions.appendMasks(form, state.styles);
  if (regionsProblem) { $("form-error").textContent = regionsProblem; showChoices(); return; }
  form.append("options", JSON.stringify(collectOptions()));
  form.append("client_token", crypto.randomUUID ? crypto.randomUUID() : String(Math.random()));
  try {
    const r = await fetch("/api/jobs", { method: "POST", body: form });
    const body = await r.json().catch(() => null);
    if (!r.ok) { $("form-error").textContent = problem(body, r.status); return; }
    watch(body.id, body);
    refreshRecent();
  } catch (err) {
    $("form-error").textContent = "could not reach the server: " + err.message;
  } finally {
    showChoices();
  }
}

function watch(id, first) {
  if (state.source) state.source.close();
  state.job = id;
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
}

function fmt(x) {
  return x === null || x === undefined ? "–" : Number(x).toPrecision(3);
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
  $("loss").textContent = fmt(s.loss);
  const terms = s.terms || {};
  $("content-loss").textContent = fmt(terms.content);
  $("style-loss").textContent = fmt(terms.style);
  $("elapsed").textContent = s.started ? `${s.elapsed.toFixed(1)} s` : "–";
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
    dl.download = `impasto-${s.id}.png`;
  }
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
  title.textContent = `${s.content} × ${s.styles.join(", ")}`;
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
    a.download = `impasto-${s.id}.png`;
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
