// impasto studio: choosing the pictures, the photo and the paintings (files, drops, examples).
// Loaded before studio.js, whose state, $ and showStart these functions use when called.
"use strict";

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
  showStart();
  window.regions.show(state.content, state.styles);
}

// A file that is not an image is refused when chosen, with a message, not at Start. Browsers
// cannot show TIFF: the server reads it, so it is taken as it is.
async function checkImage(file) {
  const why = `'${file.name}' is not an image (use PNG, JPEG, WebP, GIF, TIFF or BMP)`;
  if (!file.type.startsWith("image/")) return why;
  if (file.type === "image/tiff") return null;
  try {
    const bitmap = await createImageBitmap(file);
    bitmap.close();
    return null;
  } catch (err) {
    return why;
  }
}

async function takeFiles(files, take) {
  const good = [];
  const problems = [];
  for (const f of files) {
    const why = await checkImage(f);
    if (why) problems.push(why); else good.push(f);
  }
  $("form-error").textContent = problems.join("; ");
  if (good.length) take(good);
  showChoices();
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
  const takeContent = (files) => { state.content = fromFile(files[0]); };
  const takeStyles = (files) => { for (const f of files) state.styles.push(fromFile(f)); };
  $("content-file").addEventListener("change", async (e) => {
    const files = [...e.target.files].slice(0, 1);
    e.target.value = "";
    if (files.length) await takeFiles(files, takeContent);
  });
  $("style-files").addEventListener("change", async (e) => {
    const files = [...e.target.files];
    e.target.value = "";
    if (files.length) await takeFiles(files, takeStyles);
  });
  for (const [zone, take, one] of [
    [$("content-drop"), takeContent, true],
    [$("style-drop"), takeStyles, false],
  ]) {
    zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", (e) => {
      e.preventDefault();
      zone.classList.remove("over");
      const files = [...e.dataTransfer.files];
      if (files.length) takeFiles(one ? files.slice(0, 1) : files, take);
    });
  }
}
