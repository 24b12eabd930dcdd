// One shared view transform for every image: zoom and pan stay in step across panels.
"use strict";
const view = { scale: 1, tx: 0, ty: 0 };
let panels = [];

const $ = (id) => document.getElementById(id);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));

function applyView() {
  const t = `translate(${view.tx}px, ${view.ty}px) scale(${view.scale})`;
  document.querySelectorAll(".viewport img").forEach((img) => { img.style.transform = t; });
}

function fitView(width, height) {
  // the whole image in a panel, centred; the split view shares the same transform
  const vp = document.querySelector(".panel .viewport");
  if (!vp) return;
  view.scale = Math.min(vp.clientWidth / width, vp.clientHeight / height);
  view.tx = (vp.clientWidth - width * view.scale) / 2;
  view.ty = (vp.clientHeight - height * view.scale) / 2;
  applyView();
}

function attachPanZoom(vp) {
  vp.addEventListener("wheel", (e) => {
    e.preventDefault();
    const r = vp.getBoundingClientRect();
    const x = e.clientX - r.left, y = e.clientY - r.top;
    const k = e.deltaY < 0 ? 1.25 : 0.8;
    view.tx = x - (x - view.tx) * k;
    view.ty = y - (y - view.ty) * k;
    view.scale *= k;
    applyView();
  }, { passive: false });
  let drag = null;
  vp.addEventListener("pointerdown", (e) => { drag = { x: e.clientX, y: e.clientY }; vp.setPointerCapture(e.pointerId); });
  vp.addEventListener("pointermove", (e) => {
    if (!drag) return;
    view.tx += e.clientX - drag.x; view.ty += e.clientY - drag.y;
    drag = { x: e.clientX, y: e.clientY };
    applyView();
  });
  vp.addEventListener("pointerup", () => { drag = null; });
}

function fmt(v, digits, unit) { return v === null || v === undefined ? "–" : `${v.toFixed(digits)}${unit}`; }

function caption(p) {
  if (p.name === "original") return "<b>original</b>";
  return `<b>${esc(p.label)}</b><span class="numbers" data-testid="numbers-${p.name}">` +
    `${p.bytes.toLocaleString("en")} bytes · ${fmt(p.bpp, 3, " bpp")} · PSNR ${fmt(p.psnr, 2, " dB")} · ` +
    `LPIPS ${fmt(p.lpips, 3, "")}</span>${p.note ? `<br><i>${esc(p.note)}</i>` : ""}`;
}

function render(result) {
  panels = result.panels;
  const grid = $("grid");
  grid.innerHTML = "";
  for (const p of panels) {
    const div = document.createElement("div");
    div.className = "panel";
    div.dataset.testid = `panel-${p.name}`;
    if (p.image) {
      div.innerHTML = `<div class="viewport"><img alt="${esc(p.label)}" draggable="false" src="${p.image}"></div>` +
        `<div class="caption">${caption(p)}</div>`;
      attachPanZoom(div.querySelector(".viewport"));
    } else {
      div.innerHTML = `<div class="missing">${esc(p.label)}: ${esc(p.note)}</div>`;
    }
    grid.appendChild(div);
  }
  const shown = panels.filter((p) => p.image);
  for (const sel of [$("left"), $("right")]) {
    sel.innerHTML = shown.map((p) => `<option value="${esc(p.name)}">${esc(p.label)}</option>`).join("");
  }
  $("left").value = "original";
  $("right").value = shown.some((p) => p.name === "diffcodec-realism") ? "diffcodec-realism" : "diffcodec";
  $("split-section").hidden = false;
  updateSplit();
  fitView(result.width, result.height);
}

function updateSplit() {
  const byName = Object.fromEntries(panels.map((p) => [p.name, p]));
  $("split-left").src = byName[$("left").value].image;
  $("split-right").src = byName[$("right").value].image;
  $("split-left").style.clipPath = `inset(0 ${100 - $("slider").value}% 0 0)`;
  applyView();
}

async function run(e) {
  e.preventDefault();
  const form = new FormData();
  const file = $("file").files[0];
  if (file) form.append("image", file); else form.append("name", $("name").value);
  form.append("target", $("target").value);
  form.append("unit", $("unit").value);
  $("status").textContent = "coding with every codec…";
  $("run").disabled = true;
  try {
    const resp = await fetch("/api/compare", { method: "POST", body: form });
    const result = await resp.json();
    if (!resp.ok) { $("status").textContent = result.error; return; }
    render(result);
    $("status").textContent = `${result.name}: ${result.width}×${result.height}, target ${result.budget_bytes.toLocaleString("en")} bytes`;
  } catch (err) {
    $("status").textContent = `failed: ${err}`;
  } finally {
    $("run").disabled = false;
  }
}

async function init() {
  const names = await (await fetch("/api/images")).json();
  for (const n of names) $("name").insertAdjacentHTML("beforeend", `<option value="${esc(n)}">${esc(n)}</option>`);
  if (names.length) $("name").value = names[0];
  $("controls").addEventListener("submit", run);
  for (const id of ["left", "right", "slider"]) $(id).addEventListener("input", updateSplit);
  attachPanZoom($("split"));
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault(); drop.classList.remove("over");
    $("file").files = e.dataTransfer.files;
  });
}

init();
