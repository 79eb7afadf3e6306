// The page: loads a generator with onnxruntime-web (WASM) and draws a grid of digits, or a latent
// walk, from a seed. Everything about the model comes from its own metadata and inputs
// (generator.js), the fixed names from contract.json (docs/generator-contract.json).
// URL parameters preset the form: ?model=URL&count=64&seed=7&digit=3&threads=1; for an InfoGAN
// model also &category=3&c1=0.5&sweep=c2.

import * as ort from "./ort/ort.wasm.min.mjs";
import {
  ContractError,
  draw,
  feeds,
  finiteOutput,
  labelsFor,
  makeGrid,
  openGenerator,
  parseCodes,
  parseLabel,
  parseSeed,
  seededNoise,
  slerp,
  sweep,
  toUint8,
} from "./generator.js";
import { checkPair, classify, encode, openReader } from "./readers.js";

const MAX_COUNT = 256;
const WALK_POINTS = 4; // as `dcgan sample --interpolate`: 4 points, 12 frames between each
const WALK_STEPS = 12;
const MAX_WALKS = 64;
const MAX_SWEEP_ROWS = 16; // a sweep draws count rows (at most this many) across a code's values
const PAD_BRUSH = 18; // the drawing pad's stroke at its 224 px: about 2 px of the 28 the models read
const params = new URLSearchParams(window.location.search);
const element = (id) => document.getElementById(id);

class InputError extends Error {}

const page = {
  manifest: null,
  model: null, // { name, bytes, session, contract, loadMs }
  walking: false,
  firstGridMs: null,
  milestones: {}, // ms since navigation at which the first load reached each step (benchmarked)
  threads: chooseThreads(),
};
window.dcgan = page; // for tests and the curious: the state, and `benchmark` below

function milestone(name) {
  page.milestones[name] ??= performance.now();
}
milestone("script");

function setState(state) {
  document.body.dataset.state = state;
}

function showError(message) {
  const box = element("error");
  box.textContent = message;
  box.hidden = false;
  setState("error");
}

function clearError() {
  element("error").hidden = true;
  element("error").textContent = "";
}

function explain(error) {
  if (error instanceof ContractError || error instanceof InputError) return error.message;
  return `unexpected error: ${String(error && error.message ? error.message : error).split("\n")[0]}`;
}

window.addEventListener("error", (event) => showError(explain(event.error || event.message)));
window.addEventListener("unhandledrejection", (event) => {
  event.preventDefault();
  showError(explain(event.reason));
});

function chooseThreads() {
  const asked = params.get("threads");
  if (asked !== null) {
    const threads = Number(asked);
    if (Number.isInteger(threads) && threads >= 1 && threads <= 64) return threads;
  }
  // Threads need SharedArrayBuffer, which only a cross-origin isolated page has.
  return window.crossOriginIsolated ? Math.min(navigator.hardwareConcurrency || 1, 8) : 1;
}

ort.env.wasm.wasmPaths = new URL("./ort/", window.location.href).href;
ort.env.wasm.numThreads = page.threads;
// onnxruntime-web fetches and compiles its WebAssembly when the first session is created, before
// it reads the model: a session on no model starts that now, beside the model's download, and
// fails once it is done (the real session then finds the runtime ready).
const runtimeStarted = ort.InferenceSession.create(new Uint8Array(0))
  .catch(() => {})
  .then(() => milestone("runtime"));

async function fetchBytes(url, name) {
  let response;
  try {
    response = await fetch(url);
  } catch (error) {
    throw new ContractError(`${name}: cannot fetch (${error.message})`);
  }
  if (!response.ok) {
    const reason = response.status === 404 ? "not found" : response.statusText;
    throw new ContractError(`${name}: ${reason} (HTTP ${response.status})`);
  }
  return new Uint8Array(await response.arrayBuffer());
}

async function openModel(name, bytesPromise) {
  const started = performance.now();
  const bytes = await bytesPromise;
  milestone("download");
  await runtimeStarted;
  const opened = await openGenerator(ort, page.manifest, bytes, name, { executionProviders: ["wasm"] });
  milestone("session");
  return { name, bytes: bytes.length, ...opened, loadMs: performance.now() - started };
}

/** A model's warnings (a file without its weights' digest), under the error line. */
function showWarnings(...warnings) {
  const box = element("warning");
  box.textContent = warnings.filter(Boolean).join(" ");
  box.hidden = !box.textContent;
}

function showModel(model) {
  showWarnings(model.warning);
  const digit = element("digit");
  const wanted = digit.value || params.get("digit") || "";
  digit.replaceChildren(new Option("any", ""));
  for (const value of model.contract.classes) digit.append(new Option(String(value), String(value)));
  digit.disabled = !model.contract.conditional;
  digit.value = model.contract.classes.map(String).includes(wanted) ? wanted : "";
  const { contract } = model;
  let kind = contract.conditional ? `conditional, ${contract.classes.length} classes` : "unconditional";
  if (contract.infogan) kind = `InfoGAN, ${contract.classes.length} categories, ${contract.continuousCodes} continuous codes`;
  const size = `${(model.bytes / 1e6).toFixed(2)} MB`;
  showCodes(model.contract);
  element("stat-model").textContent = `${model.name} (${size}, ${kind}, noise ${model.contract.noiseDim})`;
  element("stat-load").textContent = `${model.loadMs.toFixed(0)} ms (download and session)`;
  element("stat-threads").textContent = `${page.threads}${window.crossOriginIsolated ? "" : " (page not cross-origin isolated)"}`;
}

/** The InfoGAN controls, from the contract: the categories (with the digit each was measured to
 * draw, where the metadata says), a slider per continuous code (with what it was measured to
 * control) and the sweep's choices. Hidden for other models. */
function showCodes(contract) {
  element("codes").hidden = !contract.infogan;
  const category = element("code-category");
  const continuous = element("continuous-codes");
  const swept = element("sweep");
  const meanings = contract.codeMeanings || {};
  const digitOf = (meanings.category && meanings.category.digit_of_code) || [];
  category.replaceChildren(new Option("any", ""));
  swept.replaceChildren(new Option("none", ""));
  continuous.replaceChildren();
  if (!contract.infogan) return;
  for (const value of contract.classes) {
    const digit = digitOf[value];
    category.append(new Option(digit === undefined ? String(value) : `${value} (digit ${digit})`, String(value)));
  }
  category.value = contract.classes.map(String).includes(params.get("category")) ? params.get("category") : "";
  const [low, high] = contract.codeRange;
  for (const name of contract.codeNames.slice(1)) {
    const role = meanings[name] && meanings[name].controls ? ` (${meanings[name].controls})` : "";
    const label = document.createElement("label");
    label.className = "code";
    const fixed = Object.assign(document.createElement("input"), { type: "checkbox", id: `fix-${name}` });
    const slider = Object.assign(document.createElement("input"), {
      type: "range", id: `code-${name}`, min: String(low), max: String(high), step: "0.05", value: "0",
    });
    const shown = Object.assign(document.createElement("output"), { id: `value-${name}`, value: "0" });
    const asked = params.get(name);
    if (asked !== null && asked !== "") {
      slider.value = asked;
      fixed.checked = true;
    }
    shown.value = slider.value;
    slider.addEventListener("input", () => {
      fixed.checked = true;
      shown.value = slider.value;
    });
    slider.addEventListener("change", () => run(drawGrid));
    fixed.addEventListener("change", () => run(drawGrid));
    label.append(fixed, `${name}${role}`, slider, shown);
    continuous.append(label);
  }
  for (const name of contract.codeNames) swept.append(new Option(name, name));
  swept.value = contract.codeNames.includes(params.get("sweep")) ? params.get("sweep") : "";
}

/** The codes the form fixes: the chosen category, and each checked slider's value. */
function readCodes(contract) {
  if (!contract.infogan) return {};
  const given = { category: element("code-category").value };
  for (const name of contract.codeNames.slice(1)) {
    if (element(`fix-${name}`).checked) given[name] = element(`code-${name}`).value;
  }
  return parseCodes(contract, given);
}

function readForm() {
  const countText = element("count").value.trim();
  const count = Number(countText);
  if (!/^[0-9]+$/.test(countText) || count < 1 || count > MAX_COUNT) {
    throw new InputError(`the count must be a whole number from 1 to ${MAX_COUNT}, got "${countText}"`);
  }
  let seed;
  try {
    seed = parseSeed(page.manifest, element("seed").value);
  } catch (error) {
    throw new InputError(error.message);
  }
  const label = parseLabel(page.model.contract, element("digit").value);
  const codes = readCodes(page.model.contract);
  const swept = page.model.contract.infogan ? element("sweep").value : "";
  if (swept && swept in codes) throw new InputError(`code ${swept} is swept: uncheck it or sweep another`);
  return { count, seed, label, codes, swept };
}

function paint(images, count, columns = undefined) {
  const grid = makeGrid(images, count, page.model.contract.imageSize, 2, columns);
  const canvas = element("grid");
  canvas.width = grid.width;
  canvas.height = grid.height;
  canvas.style.setProperty("--grid-width", grid.width);
  canvas.style.setProperty("--grid-height", grid.height);
  const image = new ImageData(grid.width, grid.height);
  for (let i = 0; i < grid.pixels.length; i += 1) {
    image.data.set([grid.pixels[i], grid.pixels[i], grid.pixels[i], 255], i * 4);
  }
  canvas.getContext("2d").putImageData(image, 0, 0);
}

/** The browser's clock step in ms: performance.now() is coarsened (5 µs to 1 ms by browser and
 * isolation), so a shorter time reads as 0 and no rate can be derived from it. */
function clockStep() {
  let smallest = Infinity;
  for (let i = 0; i < 5; i += 1) {
    const start = performance.now();
    let now = start;
    while (now === start) now = performance.now();
    smallest = Math.min(smallest, now - start);
  }
  return smallest;
}
const CLOCK_STEP_MS = clockStep();

/** `64 digits in 3.2 ms (20000 per second)`; below the clock's step, said as such. */
function speedText(count, elapsedMs, stepMs = CLOCK_STEP_MS) {
  if (!(elapsedMs >= stepMs)) {
    return `${count} digits in less than the clock's step of ${stepMs.toPrecision(2)} ms`;
  }
  const shown = elapsedMs >= 10 ? elapsedMs.toFixed(0) : elapsedMs.toPrecision(2);
  return `${count} digits in ${shown} ms (${Math.round((count * 1000) / elapsedMs)} per second)`;
}
page.speedText = speedText;

async function drawGrid() {
  page.walking = false;
  clearError();
  if (!page.model) return;
  const { count, seed, label, codes, swept } = readForm();
  const { session, contract } = page.model;
  setState("drawing");
  const started = performance.now();
  let images;
  let columns;
  let drawn = count;
  if (swept) {
    const rows = Math.min(count, MAX_SWEEP_ROWS);
    ({ images, columns } = await sweep(ort, session, contract, { seed, code: swept, rows, codes }));
    drawn = rows * columns;
  } else {
    images = await draw(ort, session, contract, { seed, count, label, codes });
  }
  const elapsed = performance.now() - started;
  paint(images, drawn, columns);
  milestone("grid");
  page.firstGridMs = page.milestones.grid; // since navigation
  element("stat-speed").textContent = speedText(drawn, elapsed);
  page.last = { count: drawn, seed: String(seed), label, codes, swept, images };
  setState("ready");
}

/** `count` walks side by side through WALK_POINTS noise vectors of `seed` and back, as
 * `dcgan sample --interpolate` makes them (a conditional model keeps each walk's class). */
async function walk() {
  clearError();
  if (!page.model) return;
  const { contract, session } = page.model;
  const form = readForm();
  const { seed, label } = form;
  const count = Math.min(form.count, MAX_WALKS);
  const stops = seededNoise(contract, seed, WALK_POINTS * count);
  const row = (point, index) => stops.subarray((point * count + index) * contract.latentDim, (point * count + index + 1) * contract.latentDim);
  const labels = labelsFor(contract, count, label);
  const { low, high, distribution } = contract.noise;
  page.walking = true;
  setState("walking");
  for (let frame = 0; page.walking; frame = (frame + 1) % (WALK_POINTS * WALK_STEPS)) {
    const point = Math.floor(frame / WALK_STEPS);
    const t = (frame % WALK_STEPS) / WALK_STEPS;
    const noise = new Float32Array(count * contract.latentDim);
    for (let i = 0; i < count; i += 1) {
      let values = slerp(row(point, i), row((point + 1) % WALK_POINTS, i), t);
      if (distribution === "uniform") values = values.map((v) => Math.min(Math.max(v, low), high));
      noise.set(values, i * contract.latentDim);
    }
    const result = await session.run(feeds(ort, contract, noise, labels));
    paint(toUint8(contract, finiteOutput(contract, result[contract.output].data)), count);
    await new Promise((resolve) => setTimeout(resolve, 60));
  }
  if (document.body.dataset.state === "walking") setState("ready");
}

/** Median samples/s of `windows` runs of about `seconds` each at `batch` images per call, in
 * this page (the benchmark stage calls it through Playwright). */
page.benchmark = async function benchmark(batch, { windows = 5, seconds = 0.25 } = {}) {
  const { contract, session } = page.model;
  const noise = seededNoise(contract, 0n, batch);
  const feed = feeds(ort, contract, noise, labelsFor(contract, batch));
  await session.run(feed);
  const rates = [];
  for (let w = 0; w < windows; w += 1) {
    let calls = 0;
    const started = performance.now();
    while (performance.now() - started < seconds * 1000) {
      await session.run(feed);
      calls += 1;
    }
    rates.push((calls * batch * 1000) / (performance.now() - started));
  }
  rates.sort((a, b) => a - b);
  return rates[Math.floor(rates.length / 2)];
};

/** The classifier and encoder the server lists (kind `family`), each checked against the
 * contract; a model that fails is a message in the drawing section, the generator unaffected. */
async function loadReaders(entries) {
  page.readers = {};
  for (const entry of entries) {
    try {
      const reader = await openReader(ort, page.manifest, await fetchBytes(entry.url, entry.url), entry.url, {
        executionProviders: ["wasm"],
      });
      page.readers[reader.kind] = reader;
      if (reader.warning) showWarnings(element("warning").textContent, reader.warning);
    } catch (error) {
      showReaderError(explain(error));
    }
  }
  element("reader").hidden = !entries.length;
  element("classified").hidden = !page.readers.classifier;
  element("reconstructed").hidden = !page.readers.encoder;
  if (document.body.dataset.reader !== "error") document.body.dataset.reader = "ready";
}

function showReaderError(message) {
  const box = element("reader-error");
  box.textContent = message;
  box.hidden = false;
  document.body.dataset.reader = "error";
}

/** The pad as the models' input: 28x28 grey pixels, the strokes scaled down with smoothing. */
function padPixels() {
  const [height, width] = page.manifest.image_shape;
  const small = Object.assign(document.createElement("canvas"), { width, height });
  const context = small.getContext("2d", { willReadFrequently: true });
  context.imageSmoothingQuality = "high";
  context.drawImage(element("pad"), 0, 0, width, height);
  const rgba = context.getImageData(0, 0, width, height).data;
  return Uint8Array.from({ length: width * height }, (_, i) => rgba[i * 4]);
}

/** What the readers make of the pad: the digit's probabilities, and G(E(x)) with the generator
 * on show (which must be one the encoder pairs with). */
async function readPad() {
  element("reader-error").hidden = true;
  document.body.dataset.reader = "reading";
  const size = page.manifest.image_shape.slice(0, 2);
  const pixels = padPixels();
  const read = { input: Array.from(pixels) };
  const { classifier, encoder } = page.readers;
  if (classifier) {
    const probabilities = Array.from(await classify(ort, classifier, pixels, size));
    const digit = probabilities.indexOf(Math.max(...probabilities));
    element("prediction").textContent = `digit ${digit} (${(100 * probabilities[digit]).toFixed(1)}%)`;
    element("probabilities").replaceChildren(
      ...probabilities.map((p) => {
        const row = document.createElement("li");
        const bar = Object.assign(document.createElement("meter"), { min: 0, max: 1, value: p });
        row.append(bar, ` ${(100 * p).toFixed(1)}%`);
        return row;
      }),
    );
    Object.assign(read, { probabilities, digit });
  }
  if (encoder && page.model) {
    const { contract, session } = page.model;
    checkPair(encoder, contract);
    const codes = await encode(ort, encoder, pixels, size);
    const result = await session.run(feeds(ort, contract, codes, null));
    const redrawn = toUint8(contract, finiteOutput(contract, result[contract.output].data));
    const canvas = element("reconstruction");
    const image = new ImageData(size[1], size[0]);
    redrawn.forEach((value, i) => image.data.set([value, value, value, 255], i * 4));
    canvas.getContext("2d").putImageData(image, 0, 0);
    read.reconstruction = Array.from(redrawn);
  }
  page.reader = read;
  document.body.dataset.reader = "read";
}

function clearPad() {
  const pad = element("pad");
  const context = pad.getContext("2d");
  context.fillStyle = "#000";
  context.fillRect(0, 0, pad.width, pad.height);
}

/** Pointer events (mouse, pen, touch) draw white strokes; lifting reads the pad. */
function setUpPad() {
  const pad = element("pad");
  const context = pad.getContext("2d");
  clearPad();
  let last = null;
  const at = (event) => {
    const box = pad.getBoundingClientRect();
    return [((event.clientX - box.left) * pad.width) / box.width, ((event.clientY - box.top) * pad.height) / box.height];
  };
  const stroke = (to) => {
    context.strokeStyle = "#fff";
    context.lineWidth = PAD_BRUSH;
    context.lineCap = "round";
    context.lineJoin = "round";
    context.beginPath();
    context.moveTo(...(last || to));
    context.lineTo(...to);
    context.stroke();
    last = to;
  };
  pad.addEventListener("pointerdown", (event) => {
    pad.setPointerCapture(event.pointerId);
    last = null;
    stroke(at(event));
  });
  pad.addEventListener("pointermove", (event) => {
    if (last) stroke(at(event));
  });
  const lift = () => {
    if (!last) return;
    last = null;
    readPad().catch((error) => showReaderError(explain(error)));
  };
  pad.addEventListener("pointerup", lift);
  pad.addEventListener("pointercancel", lift);
  element("clear").addEventListener("click", () => {
    clearPad();
    element("prediction").textContent = "";
    element("probabilities").replaceChildren();
  });
}

async function load(name, bytesPromise) {
  page.walking = false;
  clearError();
  setState("loading");
  page.model = null;
  page.model = await openModel(name, bytesPromise);
  showModel(page.model);
  await drawGrid();
}

function run(task) {
  task().catch((error) => showError(explain(error)));
}

async function start() {
  for (const [id, key] of [["count", "count"], ["seed", "seed"]]) {
    if (params.has(key)) element(id).value = params.get(key);
  }
  // Start the model download at once, beside the runtime's and the lists'.
  const listed = fetch("models.json").then((response) => (response.ok ? response.json() : []));
  const manifest = fetch("contract.json").then((response) => response.json());
  const asked = params.get("model");
  const generators = listed.then((all) => all.filter((model) => model.kind !== "family"));
  let firstUrl = asked;
  let models = [];
  if (!asked) {
    models = await generators;
    firstUrl = models.length ? models[0].url : null;
  }
  const firstBytes = firstUrl ? fetchBytes(firstUrl, firstUrl) : null;
  firstBytes?.catch(() => {}); // reported by load() below
  page.manifest = await manifest;
  if (asked) models = await generators;
  const select = element("model");
  for (const model of models) {
    select.append(new Option(`${model.name} (${(model.bytes / 1e6).toFixed(2)} MB)`, model.url));
  }
  if (firstUrl && !models.some((model) => model.url === firstUrl)) select.append(new Option(firstUrl, firstUrl));
  if (!firstUrl) throw new ContractError("no model to load: start the server with --model, or choose a file");
  select.value = firstUrl;
  select.addEventListener("change", () => run(() => load(select.value, fetchBytes(select.value, select.value))));
  element("file").addEventListener("change", (event) => {
    const file = event.target.files[0];
    if (file) run(() => load(file.name, file.arrayBuffer().then((buffer) => new Uint8Array(buffer))));
  });
  element("controls").addEventListener("submit", (event) => {
    event.preventDefault();
    run(drawGrid);
  });
  element("digit").addEventListener("change", () => run(drawGrid));
  element("code-category").addEventListener("change", () => run(drawGrid));
  element("sweep").addEventListener("change", () => run(drawGrid));
  element("walk").addEventListener("click", () => run(walk));
  await load(firstUrl, firstBytes);
  setUpPad();
  await loadReaders((await listed).filter((model) => model.kind === "family"));
}

run(start);
