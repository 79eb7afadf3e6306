// The generator's contract in JavaScript, shared by the web page (onnxruntime-web) and the Node
// sampler (onnxruntime-node): reading a model's metadata from its bytes, checking its inputs, the
// seeded noise, labels, pixels and grids. Names and ranges come from docs/generator-contract.json
// (written by pipeline/runtime/contract.py); what varies by model comes from the model's own metadata.
// No DOM and no Node APIs here: the caller passes in the runtime (`ort`) and the bytes.

export class ContractError extends Error {}

const textDecoder = new TextDecoder("utf-8");

// ONNX's ModelProto keeps `metadata_props` as field 14, each a StringStringEntryProto
// (key = 1, value = 2). onnxruntime-web does not expose them, so read the protobuf directly:
// only the top-level fields are walked, the graph is skipped by its length.
const METADATA_FIELD = 14;
const GRAPH_FIELD = 7; // the GraphProto: operators and weights, what a model's digest covers

function readVarint(bytes, state) {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10; i += 1) {
    if (state.at >= bytes.length) throw new ContractError("the file ends inside a number");
    const byte = bytes[state.at];
    state.at += 1;
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) return value;
    scale *= 128;
  }
  throw new ContractError("a number is longer than 10 bytes");
}

function* protobufFields(bytes) {
  const state = { at: 0 };
  while (state.at < bytes.length) {
    const key = readVarint(bytes, state);
    const field = Math.floor(key / 8);
    const wireType = key % 8;
    if (field === 0) throw new ContractError("field number 0");
    if (wireType === 0) {
      yield { field, value: readVarint(bytes, state) };
    } else if (wireType === 1 || wireType === 5) {
      state.at += wireType === 1 ? 8 : 4;
    } else if (wireType === 2) {
      const length = readVarint(bytes, state);
      if (state.at + length > bytes.length) throw new ContractError("a field runs past the end");
      yield { field, bytes: bytes.subarray(state.at, state.at + length) };
      state.at += length;
    } else {
      throw new ContractError(`wire type ${wireType}`);
    }
  }
  if (state.at !== bytes.length) throw new ContractError("the last field runs past the end");
}

/** The `metadata_props` of an ONNX model's bytes as an object of strings. */
export function readMetadata(modelBytes) {
  const bytes = modelBytes instanceof Uint8Array ? modelBytes : new Uint8Array(modelBytes);
  const metadata = {};
  for (const entry of protobufFields(bytes)) {
    if (entry.field !== METADATA_FIELD || !entry.bytes) continue;
    let key = "";
    let value = "";
    for (const part of protobufFields(entry.bytes)) {
      if (part.field === 1 && part.bytes) key = textDecoder.decode(part.bytes);
      if (part.field === 2 && part.bytes) value = textDecoder.decode(part.bytes);
    }
    metadata[key] = value;
  }
  return metadata;
}

/** The first line of an onnxruntime error, without its code prefix and source location. */
export function runtimeReason(error) {
  let text = String((error && error.message) || error).split("\n")[0];
  text = text.replace(/^Can't create a session\. ERROR_CODE: \d+, ERROR_MESSAGE: /, "");
  const located = text.match(/^\S+:\d+ \S.*?\)\s+(\S.*)$/); // "file.cc:203 Func(args) reason"
  return (located ? located[1] : text).slice(0, 200);
}

function inputInfo(session, name) {
  const info = (session.inputMetadata || []).find((item) => item.name === name);
  return info || { name, type: undefined, shape: undefined };
}

function shapeText(shape) {
  return `(${shape.map((size) => (typeof size === "number" ? size : "N")).join(", ")})`;
}

/**
 * What a caller must know to run the generator `session` (an onnxruntime InferenceSession),
 * checked as pipeline/runtime/contract.py's `read` checks it: its inputs and the metadata's noise,
 * classes and codes. `manifest` is docs/generator-contract.json; `source` names the model in errors.
 */
export function readContract(manifest, session, metadata, source) {
  const names = manifest.inputs;
  const inputs = session.inputNames.filter((name) => name !== names.label_mix);
  const infogan = inputs[1] === names.code_categorical;
  const expected = infogan ? [names.noise, names.code_categorical, names.code_continuous] : [names.noise, names.label];
  if (inputs.length < 1 || inputs.length > expected.length || inputs.some((name, i) => name !== expected[i])) {
    const wanted = infogan ? expected.join(", ") : `${names.noise} (and ${names.label})`;
    throw new ContractError(
      `${source}: not a generator: expected the inputs ${wanted}, got ${inputs.join(", ") || "none"}`,
    );
  }
  if (!session.outputNames.includes(manifest.output)) {
    throw new ContractError(
      `${source}: not a generator: no output ${manifest.output} (it has ${session.outputNames.join(", ")})`,
    );
  }
  if (metadata.model !== undefined && metadata.model !== manifest.model) {
    throw new ContractError(`${source}: not a generator: its metadata says model ${metadata.model}`);
  }
  const noiseDim = readNoiseDim(manifest, session, names.noise, metadata, source);
  const noise = readNoise(manifest, metadata, source);
  const codes = infogan ? readCodes(session, names, metadata, source, inputs.length) : null;
  const classes = infogan ? range(codes.categoricalCodes) : inputs.length === 2 ? readClasses(session, names.label, metadata, manifest, source) : [];
  const continuousCodes = codes ? codes.continuousCodes : 0;
  return {
    source,
    noiseDim,
    latentDim: noiseDim + continuousCodes, // InfoGAN's continuous codes are the noise's last columns
    noise,
    classes, // a conditional model's labels, or an InfoGAN model's categorical code values
    conditional: !infogan && classes.length > 0,
    infogan,
    continuousCodes,
    codeNames: infogan ? ["category", ...range(continuousCodes).map((i) => `c${i + 1}`)] : [],
    codeRange: manifest.continuous_code_range,
    codeMeanings: codes ? codes.meanings : null,
    noiseInput: names.noise,
    labelInput: infogan ? names.code_categorical : names.label,
    continuousInput: names.code_continuous,
    output: manifest.output,
    imageSize: manifest.image_shape.slice(0, 2),
    outputRange: manifest.output_range,
  };
}

function range(count) {
  return Array.from({ length: count }, (_, i) => i);
}

function readNoiseDim(manifest, session, name, metadata, source) {
  const info = inputInfo(session, name);
  if (info.type !== undefined && (info.type !== "float32" || info.shape.length !== 2)) {
    throw new ContractError(
      `${source}: not a generator: input ${name} should be float32 (N, noise_dim), got ` +
        `${info.type} of shape ${shapeText(info.shape)}`,
    );
  }
  const fixedDim = info.shape && info.shape[1];
  let noiseDim = typeof fixedDim === "number" ? fixedDim : Number.NaN;
  if (Number.isNaN(noiseDim) && /^[0-9]+$/.test(metadata.noise_dim || "")) {
    noiseDim = Number(metadata.noise_dim);
    if (noiseDim > manifest.max_noise_dim) {
      throw new ContractError(
        `${source}: the metadata's noise dimension ${metadata.noise_dim.slice(0, 20)} is outside 1-${manifest.max_noise_dim}`,
      );
    }
  }
  if (!(noiseDim > 0)) {
    throw new ContractError(`${source}: the noise dimension is neither fixed nor in the metadata`);
  }
  return noiseDim;
}

function readNoise(manifest, metadata, source) {
  const noise = { ...manifest.default_noise };
  if (metadata.noise_distribution !== undefined) {
    if (!manifest.noise_distributions.includes(metadata.noise_distribution)) {
      throw new ContractError(`${source}: unknown noise distribution ${metadata.noise_distribution}`);
    }
    noise.distribution = metadata.noise_distribution;
  }
  for (const bound of ["low", "high"]) {
    const text = metadata[`noise_${bound}`];
    if (text === undefined) continue;
    if (!Number.isFinite(Number(text)) || text.trim() === "") {
      throw new ContractError(`${source}: unreadable noise range in the metadata`);
    }
    noise[bound] = Number(text);
  }
  return noise;
}

function readClasses(session, name, metadata, manifest, source) {
  const info = inputInfo(session, name);
  if (info.type !== undefined && (info.type !== "int64" || info.shape.length !== 1)) {
    throw new ContractError(
      `${source}: not a generator: input ${name} should be int64 (N,), got ` +
        `${info.type} of shape ${shapeText(info.shape)}`,
    );
  }
  let classes;
  try {
    classes = JSON.parse(metadata.classes || "[]").map((value) => Number(value));
  } catch {
    classes = [];
  }
  if (!classes.length) {
    throw new ContractError(`${source}: takes a label but its metadata lists no classes`);
  }
  if (!classes.every((value) => Number.isInteger(value) && value >= 0 && value < manifest.max_classes)) {
    throw new ContractError(
      `${source}: the metadata's classes must be whole numbers from 0 to ${manifest.max_classes - 1}, got ${String(metadata.classes).slice(0, 60)}`,
    );
  }
  return classes;
}

/** An InfoGAN model's codes: the categorical code's count from the metadata (an int64 input
 * does not say how many values it takes), the continuous codes' from their input's width. */
function readCodes(session, names, metadata, source, inputCount) {
  const categorical = inputInfo(session, names.code_categorical);
  if (categorical.type !== undefined && (categorical.type !== "int64" || categorical.shape.length !== 1)) {
    throw new ContractError(
      `${source}: input ${names.code_categorical} should be int64 (N,), got ` +
        `${categorical.type} of shape ${shapeText(categorical.shape)}`,
    );
  }
  const count = metadata.categorical_codes || "";
  if (!/^[0-9]+$/.test(count) || Number(count) < 2) {
    throw new ContractError(`${source}: takes a categorical code but its metadata has no count`);
  }
  let continuousCodes = 0;
  if (inputCount === 3) {
    const info = inputInfo(session, names.code_continuous);
    const width = info.shape && info.shape[1];
    const declared = metadata.continuous_codes || "";
    continuousCodes = typeof width === "number" ? width : /^[0-9]+$/.test(declared) ? Number(declared) : 0;
    if ((info.type !== undefined && (info.type !== "float32" || info.shape.length !== 2)) || !(continuousCodes > 0)) {
      throw new ContractError(
        `${source}: input ${names.code_continuous} should be float32 (N, C) with C fixed or in the metadata`,
      );
    }
  }
  let meanings = null;
  try {
    meanings = metadata.code_meanings ? JSON.parse(metadata.code_meanings) : null;
  } catch {
    meanings = null; // a description only: drawing does not depend on it
  }
  return { categoricalCodes: Number(count), continuousCodes, meanings };
}

/** The hex SHA-256 of a model's graph field (ModelProto field 7: operators and weights) as it
 * stands in the bytes: what the metadata's digest (the manifest's `weights_digest` key) says. */
export async function weightsDigest(modelBytes) {
  const bytes = modelBytes instanceof Uint8Array ? modelBytes : new Uint8Array(modelBytes);
  const parts = [];
  for (const entry of protobufFields(bytes)) if (entry.field === GRAPH_FIELD && entry.bytes) parts.push(entry.bytes);
  const graph = new Uint8Array(parts.reduce((total, part) => total + part.length, 0));
  let at = 0;
  for (const part of parts) {
    graph.set(part, at);
    at += part.length;
  }
  const digest = new Uint8Array(await globalThis.crypto.subtle.digest("SHA-256", graph));
  return Array.from(digest, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** A ContractError when the model's weights do not match the digest its metadata carries; the
 * warning to show when it carries none (a model made before the digest, or elsewhere), else "". */
async function checkWeights(manifest, bytes, metadata, source) {
  const stated = metadata[manifest.weights_digest];
  if (stated === undefined) return `${source}: no ${manifest.weights_digest} in its metadata: its weights are not checked`;
  if (!globalThis.crypto?.subtle) return `${source}: this page cannot hash (it needs https or localhost): its weights are not checked`;
  if ((await weightsDigest(bytes)) !== stated) {
    throw new ContractError(
      `${source}: its weights do not match the digest in its metadata (the file is damaged or was edited); export or download it again`,
    );
  }
  return "";
}

/**
 * An onnxruntime session on the model `bytes`, its metadata, and a warning ("" when none);
 * `source` names the model in the one-line ContractError a file that is not ONNX, not loadable
 * or whose weights do not match their digest gives. `options` are onnxruntime's session
 * options. (web/readers.js opens the family's other models with it.)
 */
export async function openSession(ort, manifest, bytes, source, options = {}) {
  let metadata;
  try {
    metadata = readMetadata(bytes);
  } catch (error) {
    throw new ContractError(`${source}: not an ONNX model (${error.message})`);
  }
  const warning = await checkWeights(manifest, bytes, metadata, source);
  try {
    return { metadata, warning, session: await ort.InferenceSession.create(bytes, options) };
  } catch (error) {
    throw new ContractError(`${source}: not a usable ONNX model (${runtimeReason(error)})`);
  }
}

/** A generator's session (openSession), its warning and its checked contract: a ContractError
 * for a model that is not a generator. */
export async function openGenerator(ort, manifest, bytes, source, options = {}) {
  const { session, metadata, warning } = await openSession(ort, manifest, bytes, source, options);
  return { session, metadata, warning, contract: readContract(manifest, session, metadata, source) };
}

// SplitMix64 (Steele, Lea and Flood 2014), counter-based: output k of a seed is
// mix(seed + (k + 1) * GAMMA mod 2^64). docs/CONTRACT.md, "Seeded noise".
const MASK64 = (1n << 64n) - 1n;
const GAMMA = 0x9e3779b97f4a7c15n;
const MIX1 = 0xbf58476d1ce4e5b9n;
const MIX2 = 0x94d049bb133111ebn;
const TWO_TO_24 = 16777216;

export function splitmix64(seed, index) {
  let z = (seed + (BigInt(index) + 1n) * GAMMA) & MASK64;
  z = ((z ^ (z >> 30n)) * MIX1) & MASK64;
  z = ((z ^ (z >> 27n)) * MIX2) & MASK64;
  return z ^ (z >> 31n);
}

function unitUniform(seed, index) {
  return Number(splitmix64(seed, index) >> 40n) / TWO_TO_24;
}

/** A seed (BigInt, number or decimal text) as a BigInt in [0, seed_limit), or a ContractError. */
export function parseSeed(manifest, value) {
  const text = String(value).trim();
  if (!/^[0-9]+$/.test(text)) {
    throw new ContractError(`the seed must be a whole number from 0, got "${text}"`);
  }
  const seed = BigInt(text);
  if (seed >= BigInt(manifest.seed_limit)) {
    throw new ContractError(`the seed must be below 2^64, got ${text}`);
  }
  return seed;
}

/** Float32Array (count * dim): noise rows firstRow ... of `seed`, as pipeline/runtime/contract.py's
 * `Noise.seeded` draws them (uniform: bit-identical; normal: Box-Muller, within float rounding). */
export function seededNoise(contract, seed, count, firstRow = 0) {
  const dim = contract.latentDim;
  const first = firstRow * dim;
  const values = new Float32Array(count * dim);
  const { distribution, low, high } = contract.noise;
  for (let i = 0; i < values.length; i += 1) {
    const k = first + i;
    if (distribution === "uniform") {
      values[i] = low + (high - low) * unitUniform(seed, k);
    } else {
      const pair = k - (k % 2);
      const radius = Math.sqrt(-2 * Math.log(1 - unitUniform(seed, pair)));
      const angle = 2 * Math.PI * unitUniform(seed, pair + 1);
      values[i] = radius * (k % 2 === 0 ? Math.cos(angle) : Math.sin(angle));
    }
  }
  return values;
}

/** BigInt64Array (count) of a conditional model's labels (an InfoGAN model's categorical
 * codes): `label` for each image, or the values in turn from image number `start`; null for an
 * unconditional model. */
export function labelsFor(contract, count, label = null, start = 0) {
  if (!contract.classes.length) return null;
  const labels = new BigInt64Array(count);
  for (let i = 0; i < count; i += 1) {
    const value = label === null ? contract.classes[(start + i) % contract.classes.length] : label;
    labels[i] = BigInt(value);
  }
  return labels;
}

/** A label (text or number) checked against the model's classes; null when empty. */
export function parseLabel(contract, value) {
  const text = value === null || value === undefined ? "" : String(value).trim();
  if (text === "" || text === "any") return null;
  if (contract.infogan) {
    throw new ContractError(`${contract.source} is an InfoGAN model: it takes codes, not labels`);
  }
  if (!contract.conditional) {
    throw new ContractError(`${contract.source} is an unconditional model: it takes no label`);
  }
  const label = Number(text);
  if (!/^-?[0-9]+$/.test(text) || !contract.classes.includes(label)) {
    throw new ContractError(
      `label ${text} is not one of the model's classes (${contract.classes.join(", ")})`,
    );
  }
  return label;
}

/** Generator output -> uint8 pixels exactly as pipeline/storage/images.py's `to_uint8` (float32
 * arithmetic, clipped, rounded half to even). */
export function toUint8(contract, output) {
  const [low, high] = contract.outputRange;
  const scale = Math.fround(255 / (high - low));
  const pixels = new Uint8Array(output.length);
  for (let i = 0; i < output.length; i += 1) {
    const clipped = Math.min(Math.max(output[i], low), high);
    const value = Math.fround(Math.fround(clipped - low) * scale);
    let rounded = Math.round(value);
    if (rounded - value === 0.5 && rounded % 2 === 1) rounded -= 1;
    pixels[i] = rounded;
  }
  return pixels;
}

/** Codes given by name (numbers or their text; empty or "any": drawn) checked as
 * pipeline/runtime/sampler.py's `check_codes` checks them: name -> number. */
export function parseCodes(contract, given) {
  const codes = {};
  for (const [name, value] of Object.entries(given)) {
    const text = value === null || value === undefined ? "" : String(value).trim();
    if (text === "" || text === "any") continue;
    if (!contract.infogan) {
      throw new ContractError(`${contract.source} takes no codes (a model trained with train.model: infogan does)`);
    }
    if (!contract.codeNames.includes(name)) {
      throw new ContractError(`unknown code ${name}: this model's codes are ${contract.codeNames.join(", ")}`);
    }
    const number = Number(text);
    if (name === "category") {
      if (!/^[0-9]+$/.test(text) || !contract.classes.includes(number)) {
        throw new ContractError(`code category: expected a whole number 0-${contract.classes.length - 1}, got "${text}"`);
      }
    } else {
      const [low, high] = contract.codeRange;
      if (!Number.isFinite(number) || number < low || number > high) {
        throw new ContractError(`code ${name}: expected a number in [${low}, ${high}], got "${text}"`);
      }
    }
    codes[name] = number;
  }
  return codes;
}

/** `noise` and `labels` with the fixed `codes` written in, as the Python sampler's `with_codes`:
 * a continuous code into its noise column, the category into every label. */
export function withCodes(contract, noise, labels, codes) {
  const width = contract.latentDim;
  const count = noise.length / width;
  contract.codeNames.slice(1).forEach((name, index) => {
    if (!(name in codes)) return;
    for (let i = 0; i < count; i += 1) noise[i * width + contract.noiseDim + index] = codes[name];
  });
  if ("category" in codes) labels.fill(BigInt(codes.category));
  return { noise, labels };
}

/** The session's feeds for noise rows (`latentDim` wide) and labels (or categorical codes). */
export function feeds(ort, contract, noise, labels) {
  const count = noise.length / contract.latentDim;
  const { noiseDim, continuousCodes } = contract;
  const feed = {};
  if (continuousCodes) {
    const z = new Float32Array(count * noiseDim);
    const codes = new Float32Array(count * continuousCodes);
    for (let i = 0; i < count; i += 1) {
      const row = i * contract.latentDim;
      z.set(noise.subarray(row, row + noiseDim), i * noiseDim);
      codes.set(noise.subarray(row + noiseDim, row + contract.latentDim), i * continuousCodes);
    }
    feed[contract.noiseInput] = new ort.Tensor("float32", z, [count, noiseDim]);
    feed[contract.continuousInput] = new ort.Tensor("float32", codes, [count, continuousCodes]);
  } else {
    feed[contract.noiseInput] = new ort.Tensor("float32", noise, [count, noiseDim]);
  }
  if (labels) feed[contract.labelInput] = new ort.Tensor("int64", labels, [count]);
  return feed;
}

async function run(ort, session, contract, noise, labels) {
  const result = await session.run(feeds(ort, contract, noise, labels));
  return toUint8(contract, finiteOutput(contract, result[contract.output].data));
}

/** The generator's output, or a ContractError if any value is NaN or infinite (a damaged file,
 * or weights that diverged) rather than images of garbage. */
export function finiteOutput(contract, values) {
  if (!values.every(Number.isFinite)) {
    throw new ContractError(
      `${contract.source}: the model's output is not finite (NaN or infinity): the file is damaged or its weights diverged`,
    );
  }
  return values;
}

/** uint8 images (count * height * width) for `count` images of `seed` from image `start`, with
 * a conditional model's `label` or an InfoGAN model's fixed `codes` (parseCodes). */
export async function draw(ort, session, contract, { seed, count, label = null, start = 0, codes = {} }) {
  const fixed = withCodes(contract, seededNoise(contract, seed, count, start), labelsFor(contract, count, label, start), codes);
  return run(ort, session, contract, fixed.noise, fixed.labels);
}

/** The values a sweep of `code` takes: every category, or `columns` steps from one end of the
 * continuous range to the other (numpy's linspace). */
export function sweepValues(contract, code, columns = 10) {
  if (code === "category") return contract.classes.slice();
  const [low, high] = contract.codeRange;
  const steps = Math.max(columns, 2);
  const step = (high - low) / (steps - 1);
  return range(steps).map((i) => (i === steps - 1 ? high : i * step + low));
}

/** An InfoGAN sweep as pipeline/runtime/traversals.py's `sweep` draws it: `rows` noise vectors
 * (and categories in turn), each across the values of `code`, the other codes as drawn or fixed.
 * uint8 images row by row, and the number of values (the grid's columns). */
export async function sweep(ort, session, contract, { seed, code, rows, codes = {}, columns = 10 }) {
  if (!contract.codeNames.includes(code)) {
    throw new ContractError(`cannot sweep ${code}: this model's codes are ${contract.codeNames.join(", ") || "none"}`);
  }
  if (code in codes) throw new ContractError(`code ${code} is swept: do not also fix it`);
  const values = sweepValues(contract, code, columns);
  const base = withCodes(contract, seededNoise(contract, seed, rows), labelsFor(contract, rows), codes);
  const width = contract.latentDim;
  const noise = new Float32Array(rows * values.length * width);
  const labels = new BigInt64Array(rows * values.length);
  for (let row = 0; row < rows; row += 1) {
    for (let column = 0; column < values.length; column += 1) {
      const at = row * values.length + column;
      noise.set(base.noise.subarray(row * width, (row + 1) * width), at * width);
      labels[at] = base.labels[row];
    }
  }
  values.forEach((value, column) => {
    for (let row = 0; row < rows; row += 1) {
      const at = row * values.length + column;
      if (code === "category") labels[at] = BigInt(value);
      else noise[at * width + contract.noiseDim + contract.codeNames.indexOf(code) - 1] = value;
    }
  });
  return { images: await run(ort, session, contract, noise, labels), columns: values.length };
}

/** The grid pipeline/storage/images.py's `make_grid` makes: `columns` (by default
 * ceil(sqrt(count))) columns, `padding` black pixels around and between the images. */
export function makeGrid(images, count, [height, width], padding = 2, columns = Math.ceil(Math.sqrt(count))) {
  const rows = Math.ceil(count / columns);
  const gridWidth = columns * (width + padding) + padding;
  const gridHeight = rows * (height + padding) + padding;
  const pixels = new Uint8Array(gridWidth * gridHeight);
  for (let index = 0; index < count; index += 1) {
    const top = padding + Math.floor(index / columns) * (height + padding);
    const left = padding + (index % columns) * (width + padding);
    for (let y = 0; y < height; y += 1) {
      const from = (index * height + y) * width;
      pixels.set(images.subarray(from, from + width), (top + y) * gridWidth + left);
    }
  }
  return { width: gridWidth, height: gridHeight, pixels };
}

/** Spherical interpolation between two noise rows (linear when they are parallel), exact at
 * t = 0 and 1, as pipeline/runtime/sampler.py's `slerp`. */
export function slerp(start, end, t) {
  let dot = 0;
  let startNorm = 0;
  let endNorm = 0;
  for (let i = 0; i < start.length; i += 1) {
    dot += start[i] * end[i];
    startNorm += start[i] * start[i];
    endNorm += end[i] * end[i];
  }
  const cosine = dot / Math.max(Math.sqrt(startNorm) * Math.sqrt(endNorm), 1e-12);
  const angle = Math.acos(Math.min(Math.max(cosine, -1), 1));
  const sine = Math.sin(angle);
  const parallel = sine < 1e-6;
  const a = parallel ? 1 - t : Math.sin((1 - t) * angle) / sine;
  const b = parallel ? t : Math.sin(t * angle) / sine;
  return start.map((value, i) => a * value + b * end[i]);
}
