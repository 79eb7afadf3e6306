#!/usr/bin/env node
// Digits from the exported generator with onnxruntime-node: the Node counterpart of
// `dcgan sample`. The same model, count, seed and label give the same digits as `dcgan sample`
// and the web page (the noise is docs/CONTRACT.md's seeded noise).
//
//   node examples/node/sample.mjs --model models/generator.onnx -n 64 --seed 7 --out digits.png
//
// --out takes .png (a grid, 2x, as dcgan sample writes it), .pgm (the same grid) or .npy
// (uint8 (n, 28, 28), the images themselves). An InfoGAN model takes its codes as dcgan sample
// does: --code category=3 --code c1=0.5 fix them, --sweep c1 draws n rows across a code.

import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, extname, join, basename } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { deflateSync } from "node:zlib";

import * as ort from "onnxruntime-node";

import {
  ContractError,
  draw,
  makeGrid,
  openGenerator,
  parseCodes,
  parseLabel,
  parseSeed,
  sweep,
} from "../../web/generator.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const MANIFEST = JSON.parse(readFileSync(join(HERE, "../../docs/generator-contract.json"), "utf8"));
const MAX_IMAGES = 4096;
const MAX_THREADS = 64; // as the page: more threads than that only wait for the cores
const BATCH = 256;
const SCALE = 2;
const USAGE = `usage: node examples/node/sample.mjs [--model FILE] [-n COUNT] [--seed SEED] [--label DIGIT]
                                     [--code NAME=VALUE ...] [--sweep CODE]
                                     [--out FILE.png|.pgm|.npy] [--threads N]`;

class UsageError extends Error {}

function options(argv) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        model: { type: "string", default: "models/generator.onnx" },
        count: { type: "string", short: "n", default: "64" },
        seed: { type: "string", default: "0" },
        label: { type: "string" },
        code: { type: "string", multiple: true, default: [] },
        sweep: { type: "string" },
        out: { type: "string", default: "samples-node.png" },
        threads: { type: "string", default: "0" },
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (error) {
    throw new UsageError(error.message.split("\n")[0]);
  }
  if (parsed.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const count = Number(parsed.count);
  if (!/^[0-9]+$/.test(parsed.count) || count < 1 || count > MAX_IMAGES) {
    throw new UsageError(`-n must be a whole number from 1 to ${MAX_IMAGES}, got "${parsed.count}"`);
  }
  const threads = Number(parsed.threads);
  if (!/^[0-9]+$/.test(parsed.threads) || threads > MAX_THREADS) {
    throw new UsageError(
      `--threads must be a whole number from 0 (onnxruntime's choice) to ${MAX_THREADS}, got "${parsed.threads}"`,
    );
  }
  const format = extname(parsed.out).toLowerCase();
  if (![".png", ".pgm", ".npy"].includes(format)) {
    throw new UsageError(`--out must end in .png, .pgm or .npy, got "${parsed.out}"`);
  }
  let seed;
  try {
    seed = parseSeed(MANIFEST, parsed.seed);
  } catch (error) {
    throw new UsageError(error.message);
  }
  const codes = {};
  for (const entry of parsed.code) {
    const at = entry.indexOf("=");
    if (at < 1) throw new UsageError(`--code takes NAME=VALUE (e.g. category=3 or c1=0.5), got "${entry}"`);
    codes[entry.slice(0, at)] = entry.slice(at + 1);
  }
  if (parsed.sweep !== undefined && format === ".npy") {
    throw new UsageError("--sweep draws a grid: --out must end in .png or .pgm");
  }
  return { ...parsed, count, threads, format, seed, codes };
}

async function openModel(path, threads) {
  let bytes;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new ContractError(`${path}: ${error.code === "ENOENT" ? "no such model file" : error.message}`);
  }
  // onnxruntime's own warnings off stderr: a failure is one Error line, from main()
  return openGenerator(ort, MANIFEST, bytes, path, { intraOpNumThreads: threads, logSeverityLevel: 3 });
}

function crc32(bytes) {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit += 1) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function pngChunk(type, data) {
  const chunk = Buffer.alloc(12 + data.length);
  chunk.writeUInt32BE(data.length, 0);
  chunk.write(type, 4, "ascii");
  data.copy(chunk, 8);
  chunk.writeUInt32BE(crc32(chunk.subarray(4, 8 + data.length)), 8 + data.length);
  return chunk;
}

function enlarged({ width, height, pixels }, scale) {
  const out = new Uint8Array(width * scale * height * scale);
  for (let y = 0; y < height * scale; y += 1) {
    for (let x = 0; x < width * scale; x += 1) {
      out[y * width * scale + x] = pixels[Math.floor(y / scale) * width + Math.floor(x / scale)];
    }
  }
  return { width: width * scale, height: height * scale, pixels: out };
}

function png({ width, height, pixels }) {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 0, 0, 0, 0], 8); // 8-bit grey, no interlace
  const rows = Buffer.alloc((width + 1) * height);
  for (let y = 0; y < height; y += 1) {
    rows.set(pixels.subarray(y * width, (y + 1) * width), y * (width + 1) + 1); // filter 0
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk("IHDR", header),
    pngChunk("IDAT", deflateSync(rows)),
    pngChunk("IEND", Buffer.alloc(0)),
  ]);
}

function pgm({ width, height, pixels }) {
  return Buffer.concat([Buffer.from(`P5\n${width} ${height}\n255\n`, "ascii"), Buffer.from(pixels)]);
}

function npy(images, count, [height, width]) {
  let header = `{'descr': '|u1', 'fortran_order': False, 'shape': (${count}, ${height}, ${width}), }`;
  header += " ".repeat(63 - ((10 + header.length) % 64)) + "\n"; // whole header a multiple of 64
  const prefix = Buffer.alloc(10);
  prefix.write("\x93NUMPY", 0, "latin1");
  prefix.set([1, 0], 6);
  prefix.writeUInt16LE(header.length, 8);
  return Buffer.concat([prefix, Buffer.from(header, "latin1"), Buffer.from(images)]);
}

// The causes a user can act on, in the words `dcgan sample` uses; others keep the system's.
const WRITE_FAILURES = {
  ENOSPC: "no space left on the device",
  EDQUOT: "the disk quota is used up",
  EROFS: "the file system is read-only",
  EACCES: "permission denied",
  EPERM: "permission denied",
  EFBIG: "the file would exceed the size limit",
};

function writeAtomically(path, bytes) {
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  try {
    writeFileSync(temporary, bytes);
    renameSync(temporary, path);
  } catch (error) {
    rmSync(temporary, { force: true });
    const why = WRITE_FAILURES[error.code] || error.code || error.message;
    throw new ContractError(`${path}: cannot write: ${why}`);
  }
}

async function main() {
  const args = options(process.argv.slice(2));
  const { session, contract, warning } = await openModel(args.model, args.threads);
  if (warning) console.error(`Warning: ${warning}`);
  const label = parseLabel(contract, args.label);
  const codes = parseCodes(contract, args.codes);
  const [height, width] = contract.imageSize;
  const started = performance.now();
  let images = new Uint8Array(args.count * height * width);
  let columns;
  if (args.sweep !== undefined) {
    ({ images, columns } = await sweep(ort, session, contract, { seed: args.seed, code: args.sweep, rows: args.count, codes }));
  } else {
    for (let start = 0; start < args.count; start += BATCH) {
      const count = Math.min(BATCH, args.count - start);
      const part = await draw(ort, session, contract, { seed: args.seed, count, label, start, codes });
      images.set(part, start * height * width);
    }
  }
  const seconds = (performance.now() - started) / 1000;
  const drawn = images.length / (height * width);
  if (args.format === ".npy") {
    writeAtomically(args.out, npy(images, args.count, contract.imageSize));
  } else {
    const grid = enlarged(makeGrid(images, drawn, contract.imageSize, 2, columns), SCALE);
    writeAtomically(args.out, args.format === ".png" ? png(grid) : pgm(grid));
  }
  const rate = Math.round(drawn / seconds);
  console.log(`wrote ${args.out}: ${drawn} images, seed ${args.seed} (${rate} images/s)`);
}

main().catch((error) => {
  const known = error instanceof ContractError || error instanceof UsageError;
  console.error(`Error: ${known ? error.message : String(error.message || error).split("\n")[0]}`);
  if (error instanceof UsageError) console.error(USAGE);
  process.exit(error instanceof UsageError ? 2 : 1);
});
