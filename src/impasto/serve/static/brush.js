// impasto studio: the Regions panel. Paint where each painting goes (and what stays the photo)
// over the photo; the page sends one grayscale mask per painting, and one of the kept part.
//
// Each painting (and "keep photo") has a layer: an offscreen canvas at the photo's aspect whose
// alpha is the region. A brush stroke paints its own layer and erases the others (regions do not
// overlap unless an uploaded mask makes them); the eraser erases every layer. The visible canvas
// is the photo with each layer washed over it in its colour. Plain JavaScript, no build step; the
// page's script calls window.regions.show(...) when the choice of pictures changes and
// window.regions.appendMasks(...) when it submits.
"use strict";

window.regions = (() => {
  const LONGEST = 512; // the layers' longer side: masks are resized by the engine anyway
  const PALETTE = ["#e4572e", "#2e86de", "#f2c14e", "#8e44ad", "#27ae60", "#e84393", "#00a8a8", "#8d6e63"];
  const KEEP = "keep";
  const ERASER = "eraser";
  const $ = (id) => document.getElementById(id);

  const st = {
    content: null,      // the chosen photo (the page's item), whose layers these are
    photo: null,        // its decoded <img>
    size: [0, 0],       // the layers' width and height
    layers: new Map(),  // painting item (or KEEP) -> {canvas, colour}
    styles: [],
    tool: null,         // a painting item, KEEP or ERASER
    stroke: null,       // {id, x, y} while a pointer paints
    hover: null,        // [x, y] of the pointer over the canvas, for the brush outline
    frame: 0,
  };
  const canvas = $("regions-canvas");
  const ctx = canvas.getContext("2d");
  const scratch = document.createElement("canvas");
  scratch.getContext("2d", { willReadFrequently: true });

  // --- layers ----------------------------------------------------------------------------------

  function newLayer(colour) {
    const c = document.createElement("canvas");
    [c.width, c.height] = st.size;
    c.getContext("2d", { willReadFrequently: true }); // read back for each mask sent
    return { canvas: c, colour };
  }

  function colourFor() {
    const used = new Set([...st.layers.values()].map((l) => l.colour));
    const free = PALETTE.find((c) => !used.has(c));
    return free || `hsl(${(used.size * 137.5) % 360} 70% 50%)`;
  }

  let hatch = null;
  function stripes() {
    // "keep photo" is shown as white hatching: the photo stays visible between the stripes.
    if (!hatch) {
      const tile = document.createElement("canvas");
      tile.width = tile.height = 12;
      const t = tile.getContext("2d");
      t.strokeStyle = "#ffffff";
      t.lineWidth = 4;
      t.beginPath();
      for (const o of [-12, 0, 12]) { t.moveTo(o, 12); t.lineTo(o + 12, 0); }
      t.stroke();
      hatch = scratch.getContext("2d").createPattern(tile, "repeat");
    }
    return hatch;
  }

  function painted(layer) {
    const [w, h] = st.size;
    const data = layer.canvas.getContext("2d").getImageData(0, 0, w, h).data;
    for (let i = 3; i < data.length; i += 4) if (data[i] > 0) return true;
    return false;
  }

  // --- what the page calls ---------------------------------------------------------------------

  function show(content, styles) {
    const section = $("regions");
    section.hidden = !(content && styles.length);
    if (content !== st.content) {
      st.content = content;
      st.photo = null;
      st.layers.clear();
      if (content) loadPhoto(content);
    }
    for (const key of [...st.layers.keys()]) {
      if (key !== KEEP && !styles.includes(key)) st.layers.delete(key);
    }
    st.styles = styles.slice();
    if (st.photo) {
      for (const s of styles) if (!st.layers.has(s)) st.layers.set(s, newLayer(colourFor()));
    }
    if (st.tool !== KEEP && st.tool !== ERASER && !styles.includes(st.tool)) {
      st.tool = styles[0] || null;
    }
    legend();
    draw();
  }

  function loadPhoto(content) {
    const img = new Image();
    img.onload = () => {
      if (st.content !== content) return; // another photo was chosen meanwhile
      const scale = LONGEST / Math.max(img.naturalWidth, img.naturalHeight);
      st.size = [Math.max(1, Math.round(img.naturalWidth * scale)),
        Math.max(1, Math.round(img.naturalHeight * scale))];
      [canvas.width, canvas.height] = st.size;
      [scratch.width, scratch.height] = st.size;
      st.photo = img;
      st.layers.set(KEEP, newLayer(null));
      show(st.content, st.styles);
      canvas.dataset.ready = "1";
    };
    canvas.dataset.ready = "";
    img.src = content.url;
  }

  // Appends a mask per painting (in the server's order of the styles: uploaded files first, then
  // examples) and the kept part, if anything is painted. Returns a problem to show, or null.
  async function appendMasks(form, styles) {
    if (!st.photo) return null;
    const keep = st.layers.get(KEEP);
    const regions = styles.map((s) => st.layers.get(s));
    const done = regions.map(painted);
    if (done.some(Boolean) && !done.every(Boolean)) {
      const missing = styles.filter((_, i) => !done[i]).map((s) => s.label).join(", ");
      return `Paint a region for every painting (none yet for ${missing}), or Clear the regions ` +
        "to blend the paintings everywhere.";
    }
    const order = [...styles.filter((s) => s.file), ...styles.filter((s) => !s.file)];
    if (done.every(Boolean)) {
      for (const [i, s] of order.entries()) {
        form.append("masks", await maskPng(st.layers.get(s)), `region-${i + 1}.png`);
      }
    }
    if (painted(keep)) form.append("keep", await maskPng(keep), "keep.png");
    return null;
  }

  // A layer as a grayscale PNG: white where painted (its alpha), black elsewhere.
  function maskPng(layer) {
    const [w, h] = st.size;
    const pixels = layer.canvas.getContext("2d").getImageData(0, 0, w, h);
    const d = pixels.data;
    for (let i = 0; i < d.length; i += 4) {
      d[i] = d[i + 1] = d[i + 2] = d[i + 3];
      d[i + 3] = 255;
    }
    const out = document.createElement("canvas");
    [out.width, out.height] = st.size;
    out.getContext("2d").putImageData(pixels, 0, 0);
    return new Promise((resolve) => out.toBlob(resolve, "image/png"));
  }

  // --- the legend: a tool per painting, keep photo, eraser ---------------------------------------

  function toolButton(tool, text, swatch, thumbUrl) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "tool";
    b.setAttribute("aria-pressed", String(st.tool === tool));
    const sw = document.createElement("span");
    sw.className = "swatch" + (tool === KEEP ? " keep" : tool === ERASER ? " eraser" : "");
    if (swatch) sw.style.background = swatch;
    b.append(sw);
    if (thumbUrl) {
      const img = document.createElement("img");
      img.src = thumbUrl;
      img.alt = "";
      b.append(img);
    }
    const label = document.createElement("span");
    label.className = "tool-label";
    label.textContent = text;
    b.append(label);
    b.addEventListener("click", () => { st.tool = tool; legend(); });
    return b;
  }

  function uploadMask(style) {
    const label = document.createElement("label");
    label.className = "mask-upload";
    label.title = `a grayscale mask for ${style.label}: white where it paints`;
    const input = document.createElement("input");
    input.type = "file";
    input.accept = "image/*";
    input.setAttribute("aria-label", `upload a mask for ${style.label}`);
    input.addEventListener("change", () => {
      if (input.files.length) loadMask(style, input.files[0]);
      input.value = "";
    });
    label.append(input, "mask…");
    return label;
  }

  function legend() {
    const box = $("regions-tools");
    const rows = st.styles.map((s, i) => {
      const row = document.createElement("div");
      row.className = "tool-row";
      const layer = st.layers.get(s);
      row.append(toolButton(s, s.label || `painting ${i + 1}`, layer && layer.colour, s.url),
        uploadMask(s));
      return row;
    });
    const extra = document.createElement("div");
    extra.className = "tool-row";
    extra.append(toolButton(KEEP, "keep photo", null, null), toolButton(ERASER, "eraser", null, null));
    box.replaceChildren(...rows, extra);
  }

  // An uploaded mask replaces the painting's layer: its gray levels (transparency over white, as
  // the engine reads masks) become the layer's alpha.
  function loadMask(style, file) {
    const img = new Image();
    const url = URL.createObjectURL(file);
    img.onload = () => {
      URL.revokeObjectURL(url);
      const layer = st.layers.get(style);
      if (!layer) return;
      const [w, h] = st.size;
      const s = scratch.getContext("2d");
      s.globalCompositeOperation = "source-over";
      s.clearRect(0, 0, w, h);
      s.drawImage(img, 0, 0, w, h);
      const pixels = s.getImageData(0, 0, w, h);
      const d = pixels.data;
      for (let i = 0; i < d.length; i += 4) {
        const a = d[i + 3] / 255;
        const grey = 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
        d[i + 3] = Math.round(grey * a + 255 * (1 - a));
        d[i] = d[i + 1] = d[i + 2] = 255;
      }
      layer.canvas.getContext("2d").putImageData(pixels, 0, 0);
      draw();
    };
    img.onerror = () => {
      URL.revokeObjectURL(url);
      $("form-error").textContent = `'${file.name}' is not an image the browser can read`;
    };
    img.src = url;
  }

  // --- painting --------------------------------------------------------------------------------

  function at(e) {
    const r = canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * (canvas.width / r.width),
      (e.clientY - r.top) * (canvas.height / r.height)];
  }

  function brush() {
    return Number($("brush-size").value) * (st.size[0] + st.size[1]) / 2 / 100;
  }

  function segment(x0, y0, x1, y1) {
    const width = brush();
    for (const [key, layer] of st.layers) {
      const c = layer.canvas.getContext("2d");
      c.globalCompositeOperation = key === st.tool ? "source-over" : "destination-out";
      c.strokeStyle = c.fillStyle = "#ffffff";
      c.lineWidth = width;
      c.lineCap = c.lineJoin = "round";
      c.beginPath();
      if (x0 === x1 && y0 === y1) {
        c.arc(x0, y0, width / 2, 0, 2 * Math.PI);
        c.fill();
      } else {
        c.moveTo(x0, y0);
        c.lineTo(x1, y1);
        c.stroke();
      }
      c.globalCompositeOperation = "source-over";
    }
    draw();
  }

  canvas.addEventListener("pointerdown", (e) => {
    if (!st.photo || !st.tool || e.button !== 0) return;
    e.preventDefault();
    canvas.setPointerCapture(e.pointerId);
    const [x, y] = at(e);
    st.stroke = { id: e.pointerId, x, y };
    segment(x, y, x, y);
  });
  canvas.addEventListener("pointermove", (e) => {
    st.hover = at(e);
    if (!st.stroke || st.stroke.id !== e.pointerId) { draw(); return; }
    const [x, y] = st.hover;
    segment(st.stroke.x, st.stroke.y, x, y);
    st.stroke.x = x;
    st.stroke.y = y;
  });
  for (const type of ["pointerup", "pointercancel"]) {
    canvas.addEventListener(type, (e) => {
      if (st.stroke && st.stroke.id === e.pointerId) st.stroke = null;
    });
  }
  canvas.addEventListener("pointerleave", () => { st.hover = null; draw(); });

  $("regions-clear").addEventListener("click", () => {
    for (const layer of st.layers.values()) {
      layer.canvas.getContext("2d").clearRect(0, 0, st.size[0], st.size[1]);
    }
    draw();
  });
  $("brush-size").addEventListener("input", draw);

  // --- the preview: the photo, each region washed in its colour --------------------------------

  function draw() {
    if (st.frame) return;
    st.frame = requestAnimationFrame(() => {
      st.frame = 0;
      render();
    });
  }

  function render() {
    if (!st.photo) return;
    const [w, h] = st.size;
    ctx.globalAlpha = 1;
    ctx.drawImage(st.photo, 0, 0, w, h);
    const s = scratch.getContext("2d");
    for (const [key, layer] of st.layers) {
      s.globalCompositeOperation = "copy";
      s.drawImage(layer.canvas, 0, 0);
      s.globalCompositeOperation = "source-in";
      s.fillStyle = key === KEEP ? stripes() : layer.colour;
      s.fillRect(0, 0, w, h);
      ctx.globalAlpha = key === KEEP ? 0.85 : 0.5;
      ctx.drawImage(scratch, 0, 0);
    }
    s.globalCompositeOperation = "source-over";
    ctx.globalAlpha = 1;
    if (st.hover) { // the brush's outline, black in white: visible on any photo
      const unit = Math.max(1, w / 360);
      for (const [colour, width] of [["#ffffff", 3 * unit], ["#000000", unit]]) {
        ctx.beginPath();
        ctx.arc(st.hover[0], st.hover[1], brush() / 2, 0, 2 * Math.PI);
        ctx.strokeStyle = colour;
        ctx.lineWidth = width;
        ctx.stroke();
      }
    }
  }

  return { show, appendMasks };
})();
