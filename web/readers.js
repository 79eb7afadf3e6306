// The family's models that read images, in JavaScript: the semi-supervised model's classifier
// (images -> each digit's probability) and the BiGAN model's encoder (images -> the noise the
// generator redraws them from). Each model says what it is in its metadata (`model`); names and
// shapes come from docs/generator-contract.json's `classifier` and `encoder` sections, as
// pipeline/runtime/classify.py and encode.py check them. No DOM and no Node APIs here.

import { ContractError, openSession } from "./generator.js";

/** A session on a classifier's or an encoder's `bytes`, checked against the contract: `kind` is
 * "classifier" or "encoder". `source` names the model in the one-line ContractError. */
export async function openReader(ort, manifest, bytes, source, options = {}) {
  const { session, metadata, warning } = await openSession(ort, manifest, bytes, source, options);
  const kinds = { [manifest.classifier.model]: "classifier", [manifest.encoder.model]: "encoder" };
  const kind = kinds[metadata.model];
  if (kind === undefined) {
    throw new ContractError(
      `${source}: neither a classifier nor an encoder: its metadata says model ${metadata.model ?? "nothing"}`,
    );
  }
  const spec = manifest[kind];
  const outputs = kind === "classifier" ? [spec.output] : Object.values(spec.outputs);
  if (session.inputNames.join(",") !== spec.input || outputs.some((name) => !session.outputNames.includes(name))) {
    throw new ContractError(
      `${source}: not the ${metadata.model} the contract describes: inputs ${session.inputNames.join(", ")}, ` +
        `outputs ${session.outputNames.join(", ")}; expected input ${spec.input} and outputs ${outputs.join(", ")}`,
    );
  }
  const noiseDim = Number(metadata.noise_dim);
  if (kind === "encoder" && !(Number.isInteger(noiseDim) && noiseDim > 0)) {
    throw new ContractError(`${source}: the encoder's metadata does not say how wide its codes are`);
  }
  return { source, kind, session, spec, metadata, warning, noiseDim: kind === "encoder" ? noiseDim : null };
}

/** uint8 pixels (count * 28 * 28) as the models' input, float32 (count, 28, 28, 1) in [-1, 1]
 * (pipeline/storage/images.py's `from_uint8`). */
export function imagesTensor(ort, pixels, [height, width]) {
  const values = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i += 1) values[i] = Math.fround(pixels[i] / 127.5) - 1;
  return new ort.Tensor("float32", values, [pixels.length / (height * width), height, width, 1]);
}

/** Each image's digit probabilities: Float32Array (count * classes). */
export async function classify(ort, reader, pixels, imageSize) {
  const result = await reader.session.run({ [reader.spec.input]: imagesTensor(ort, pixels, imageSize) });
  return result[reader.spec.output].data;
}

/** Each image's codes, the generator's noise: Float32Array (count * noiseDim). */
export async function encode(ort, reader, pixels, imageSize) {
  const result = await reader.session.run({ [reader.spec.input]: imagesTensor(ort, pixels, imageSize) });
  return result[reader.spec.outputs.codes].data;
}

/** A ContractError unless `contract` (a generator's) takes the encoder's codes as its noise,
 * as pipeline/runtime/encode.py's `check_pairs_with`. */
export function checkPair(reader, contract) {
  if (contract.classes.length || contract.noiseDim !== reader.noiseDim) {
    throw new ContractError(
      `${reader.source}: the encoder's codes have ${reader.noiseDim} values; the generator takes ` +
        `${contract.latentDim}${contract.classes.length ? " and labels or codes" : ""}: use the generator of the same BiGAN run`,
    );
  }
}
