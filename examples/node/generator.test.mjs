// `npm test`: the JavaScript contract as an app imports it (by the package's name, through
// package.json's `exports`), with Node's own test runner. With models/generator.onnx present
// (after `make run`), it also draws from it with onnxruntime-node.

import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { test } from "node:test";

import * as ort from "onnxruntime-node";

import manifest from "dcgan-mnist-web/contract.json" with { type: "json" };
import { ContractError, draw, makeGrid, openGenerator, parseSeed, splitmix64, toUint8 } from "dcgan-mnist-web";
import { openReader } from "dcgan-mnist-web/readers";

test("the seeded noise's generator gives splitmix64's published outputs", () => {
  // The first outputs from state 0 in the reference implementation (Vigna's splitmix64.c).
  assert.deepEqual(
    [0, 1, 2].map((k) => splitmix64(0n, k)),
    [0xe220a8397b1dcdafn, 0x6e789e6aa1b965f4n, 0x06c45d188009454fn],
  );
});

test("pixels are clipped, then rounded half to even, as Python's to_uint8", () => {
  const contract = { outputRange: manifest.output_range };
  const output = Float32Array.from([-2, -1, 0, 1, 3, -0.5, 0.5]); // 0: 127.5 -> 128
  assert.deepEqual(Array.from(toUint8(contract, output)), [0, 0, 128, 255, 255, 64, 191]);
});

test("a seed outside [0, 2^64) is a ContractError", () => {
  assert.equal(parseSeed(manifest, "18446744073709551615"), 2n ** 64n - 1n);
  assert.throws(() => parseSeed(manifest, "18446744073709551616"), ContractError);
  assert.throws(() => parseSeed(manifest, "-1"), /whole number from 0/);
});

test("a grid has a 2-pixel black border around and between the images", () => {
  const grid = makeGrid(new Uint8Array(5 * 4).fill(255), 5, [2, 2]);
  assert.equal(grid.width, 3 * 4 + 2); // ceil(sqrt(5)) = 3 columns
  assert.equal(grid.height, 2 * 4 + 2);
  assert.equal(grid.pixels[0], 0);
  assert.equal(grid.pixels[2 * grid.width + 2], 255);
});

test("a generator is not a classifier or an encoder", async () => {
  const model = "models/generator.onnx";
  if (!existsSync(model)) return;
  await assert.rejects(openReader(ort, manifest, readFileSync(model), model), /neither a classifier nor an encoder/);
});

test("the exported generator draws 16 digits", { skip: !existsSync("models/generator.onnx") && "no models/generator.onnx: run `make run`" }, async () => {
  const { session, contract } = await openGenerator(ort, manifest, readFileSync("models/generator.onnx"), "generator.onnx");
  const images = await draw(ort, session, contract, { seed: 7n, count: 16 });
  assert.equal(images.length, 16 * 28 * 28);
  assert.ok(images.some((value) => value > 200) && images.some((value) => value < 50));
});
