#!/usr/bin/env node
// Samples per second of a generator with onnxruntime-node, as JSON on stdout: the median of
// WINDOWS timed windows per batch size. `dcgan web-benchmark` runs it beside the browser and
// native onnxruntime.
//
//   node examples/node/benchmark.mjs MODEL THREADS BATCH [BATCH ...]

import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import * as ort from "onnxruntime-node";

import { feeds, labelsFor, openGenerator, seededNoise } from "../../web/generator.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const MANIFEST = JSON.parse(readFileSync(join(HERE, "../../docs/generator-contract.json"), "utf8"));
const WINDOWS = 5;
const WINDOW_MS = 250;

const [model, threadsText, ...batchTexts] = process.argv.slice(2);
const bytes = readFileSync(model);
const options = { intraOpNumThreads: Number(threadsText) };
const { session, contract } = await openGenerator(ort, MANIFEST, bytes, model, options);
const rates = {};
for (const batch of batchTexts.map(Number)) {
  const feed = feeds(ort, contract, seededNoise(contract, 0n, batch), labelsFor(contract, batch));
  await session.run(feed);
  const windows = [];
  for (let w = 0; w < WINDOWS; w += 1) {
    let calls = 0;
    const started = performance.now();
    while (performance.now() - started < WINDOW_MS) {
      await session.run(feed);
      calls += 1;
    }
    windows.push((calls * batch * 1000) / (performance.now() - started));
  }
  windows.sort((a, b) => a - b);
  rates[batch] = windows[Math.floor(WINDOWS / 2)];
}
console.log(JSON.stringify(rates));
