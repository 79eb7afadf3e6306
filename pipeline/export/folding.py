"""The trained generator rewritten for fast inference: the same function, fewer and batched ops.

What onnxruntime spends its time on in the Keras graph as tf2onnx converts it: its CPU
`ConvTranspose` goes image by image, and every batch norm is a multiply and an add over the
whole activation. The rewrite, exact up to float rounding (the export check holds it to
TensorFlow's output):

- The conditional generator's label embedding, concatenated to the noise before the first dense
  layer, is a per-class bias of that layer: `[z, e(y)] W + b = z W_z + (e(y) W_e + b)`, so the
  graph takes a row of a `(classes, 1024)` table instead of embedding and concatenating. The row
  is picked as `label_mix[label] @ table`, `label_mix` being the identity (exact: a one-hot row
  times the table is that row). The export makes `label_mix` an optional input, so a caller can
  feed rows of class weights instead: `(1 - t, t)` on two digits morphs one into the other.
- Batch norm is folded into the weights next to it. The first one into the second dense layer;
  the second, which has a scale and shift per feature after a ReLU, into the same dense layer
  too, the ReLU becoming a Max with a per-feature floor; the third (per channel) into the last
  deconvolution's kernel, its shift into that deconvolution's bias image (zero padding makes the
  bias differ at the borders, so it is computed, not folded).
- A stride-2, 4x4, "same" transposed convolution is four 2x2 convolutions, one per output pixel
  phase, each over the whole batch (onnxruntime runs them in its blocked layout at about the
  matrix-multiply peak). The last deconvolution reads those phases as they are: its output in
  4x4 blocks is a sum of four 2x2 convolutions, one per phase, and a depth-to-space puts the
  blocks in place. Nothing is computed twice and nothing is copied to interleave pixels.
"""

from __future__ import annotations

import numpy as np

from pipeline.errors import ExportError
from pipeline.runtime.contract import LABEL_INPUT, LABEL_MIX_INPUT, NOISE_INPUT

PHASES = ((0, 0), (0, 1), (1, 0), (1, 1))  # output pixel phases (row, column) modulo 2
ARCHITECTURE = (
    "Dense",
    "BatchNormalization",
    "Dense",
    "BatchNormalization",
    "Reshape",
    "Conv2DTranspose",
    "BatchNormalization",
    "Conv2DTranspose",
)


CONDITIONING = ("Embedding", "Concatenate")


def folded_generator(generator):
    """A `tf.function` equal to `generator(..., training=False)`, built for speed: `z -> images`,
    or for the conditional generator `(z, label) -> images` with int64 labels `(N,)`."""
    import tensorflow as tf

    layers = [layer for layer in generator.layers if type(layer).__name__ != "InputLayer"]
    kinds = tuple(type(layer).__name__ for layer in layers)
    conditional = kinds[: len(CONDITIONING)] == CONDITIONING
    if conditional:
        (embedding, _), layers = layers[:2], layers[2:]
    if tuple(type(layer).__name__ for layer in layers) != ARCHITECTURE:
        raise ExportError(f"cannot fold a generator made of {', '.join(kinds)}")
    dense1, norm1, dense2, norm2, reshape, deconv1, norm3, deconv2 = layers
    _check_transposed(deconv1)
    _check_transposed(deconv2)
    w1, b1 = _weights(dense1)
    if conditional:  # the noise comes first in the concatenation (pipeline.gan.networks)
        table = embedding.get_weights()[0].astype(np.float64)  # (classes, embedding)
        noise_dim = w1.shape[0] - table.shape[1]
        w1, b1 = w1[:noise_dim], table @ w1[noise_dim:] + b1  # b1: one row per class
    w2, b2 = _weights(dense2)
    k1, c1 = _weights(deconv1)
    k2, c2 = _weights(deconv2)
    scale1, shift1 = _affine(norm1)
    scale2, shift2 = _affine(norm2)
    scale3, shift3 = _affine(norm3)
    shape = tuple(reshape.target_shape)  # (7, 7, 128)

    # norm1 into dense2. norm2 after the ReLU, with s = sign * |s|:
    # relu(a) * s + t = sign * max(a * |s| + sign * t, sign * t), so dense2 takes |s| and
    # sign * t, and a Max replaces the ReLU (the sign multiply only when a gamma is negative).
    w2, b2 = scale1[:, None] * w2, shift1 @ w2 + b2
    sign2 = np.sign(scale2)
    floor2 = sign2 * shift2
    w2, b2 = w2 * np.abs(scale2), b2 * np.abs(scale2) + floor2
    # norm3 (one scale per channel) into deconv2, its shift as deconv2's bias image.
    bias2 = _transposed_bias(
        k2, c2, np.broadcast_to(shift3, (2 * shape[0], 2 * shape[1], len(shift3)))
    )
    k2 = k2 * scale3[None, None, None, :]
    # dense2's features in channel-major order: its output reshapes straight to NCHW, the
    # layout onnxruntime's convolutions use, so the converted graph needs no transpose.
    channel_major = np.arange(w2.shape[1]).reshape(shape).transpose(2, 0, 1).ravel()
    w2, b2 = w2[:, channel_major], b2[channel_major]
    sign2, floor2 = sign2[channel_major], floor2[channel_major]
    w1, b1, w2, b2, sign2, floor2, c1 = (
        a.astype(np.float32) for a in (w1, b1, w2, b2, sign2, floor2, c1)
    )
    kernels1 = [phase_kernel(k1, *phase).astype(np.float32) for phase in PHASES]
    packed_kernel, image_bias = packed_transposed(k2, bias2)
    channels = k2.shape[3]
    kernels2 = [packed_kernel[:, :, i * channels : (i + 1) * channels] for i in range(4)]

    def generate(z, label=None):
        # numpy constants, not captured tensors: they become constants of the traced graph.
        bias = b1
        if label is not None:
            mix = tf.constant(np.eye(len(b1), dtype=np.float32), name=LABEL_MIX_INPUT)
            bias = tf.matmul(tf.gather(mix, label), b1)
        x = tf.nn.relu(tf.matmul(z, w1) + bias)
        x = tf.maximum(tf.matmul(x, w2) + b2, floor2)
        if np.any(sign2 < 0):
            x = x * sign2
        x = tf.reshape(x, (-1, shape[2], shape[0], shape[1]))
        x = tf.transpose(x, (0, 2, 3, 1))
        y = image_bias
        for (py, px), kernel1, kernel2 in zip(PHASES, kernels1, kernels2, strict=True):
            # deconv1's output phase (py, px), then its share of deconv2 on the packed phases.
            phase = tf.nn.conv2d(x, kernel1, 1, [[0, 0], [1 - py, py], [1 - px, px], [0, 0]])
            phase = tf.nn.relu(phase + c1)
            y = tf.nn.conv2d(phase, kernel2, 1, [[0, 0], [py, 1 - py], [px, 1 - px], [0, 0]]) + y
        return tf.nn.depth_to_space(tf.tanh(y), 4)

    noise = tf.TensorSpec((None, w1.shape[0]), tf.float32, name=NOISE_INPUT)
    if conditional:
        label = tf.TensorSpec((None,), tf.int64, name=LABEL_INPUT)
        return tf.function(generate, input_signature=(noise, label))
    return tf.function(lambda z: generate(z), input_signature=(noise,))


def phase_kernel(kernel: np.ndarray, py: int, px: int) -> np.ndarray:
    """Keras `Conv2DTranspose` kernel `(4, 4, out, in)` -> the 2x2 conv kernel `(2, 2, in, out)`
    of output phase `(py, px)`.

    Output pixel `o = 2 m + p` of the transposed convolution (stride 2, one pixel of padding)
    sums input `i` times kernel tap `o + 1 - 2 i`: inputs m - 1, m with taps 3, 1 for p = 0;
    inputs m, m + 1 with taps 2, 0 for p = 1. Padded by `1 - p` before and `p` after, a 2x2
    convolution reads exactly those inputs, with tap `3 - p - 2 j` at its row j.
    """
    if kernel.shape[:2] != (4, 4):
        raise ExportError(f"cannot fold a {kernel.shape[0]}x{kernel.shape[1]} deconvolution")
    taps = [[kernel[3 - py - 2 * j, 3 - px - 2 * i].T for i in (0, 1)] for j in (0, 1)]
    return np.array(taps)


def packed_transposed(kernel: np.ndarray, bias_image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The last deconvolution as a 2x2 valid conv on the packed phases, then depth-to-space 4.

    Packed, phase `(py, px)` of the input image `h` is channel block `2 py + px`, with
    `packed[r] = h[2 r - p]`. Output pixels `4 m .. 4 m + 3` need `h[2 m - 1 .. 2 m + 2]`, that
    is packed rows m and m + 1: a 2x2 kernel, read here from the deconvolution's answer to
    unit impulses. Returns the kernel `(2, 2, 4 in, 16 out)` and bias `(H, W, 16 out)`; the
    generator applies the kernel block by block, each phase moved to its packed place by the
    zero padding of its own convolution.
    """
    _, _, outputs, inputs = kernel.shape
    grid, middle = 8, 3  # an impulse at packed (3, 3) reaches output blocks 2 and 3 only
    impulses = np.zeros((4 * inputs, 2 * grid, 2 * grid, inputs), np.float32)
    for block, (py, px) in enumerate(PHASES):
        for channel in range(inputs):
            impulses[block * inputs + channel, 2 * middle - py, 2 * middle - px, channel] = 1.0
    response = _deconvolve(impulses, kernel)  # (4 in, 4 grid, 4 grid, out)
    blocks = response.reshape(4 * inputs, grid, 4, grid, 4, outputs)
    blocks = blocks.transpose(0, 1, 3, 2, 4, 5).reshape(4 * inputs, grid, grid, 16 * outputs)
    packed = np.zeros((2, 2, 4 * inputs, 16 * outputs))
    for dy in (0, 1):
        for dx in (0, 1):
            packed[dy, dx] = blocks[:, middle - dy, middle - dx]
    reached = np.abs(blocks).sum(axis=(0, 3)) > 0
    reached[middle - 1 : middle + 1, middle - 1 : middle + 1] = False
    if reached.any():
        raise ExportError("the packed deconvolution reaches beyond its 2x2 kernel")
    height, width = bias_image.shape[0] // 4, bias_image.shape[1] // 4
    bias = bias_image.reshape(height, 4, width, 4, outputs).transpose(0, 2, 1, 3, 4)
    return packed.astype(np.float32), bias.reshape(height, width, 16 * outputs).astype(np.float32)


def _deconvolve(images: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """TensorFlow's stride-2 "same" transposed convolution, no bias: `(N, H, W, in)` ->
    `(N, 2H, 2W, out)`."""
    import tensorflow as tf

    count, height, width, _ = images.shape
    return tf.nn.conv2d_transpose(
        tf.constant(images.astype(np.float32)),
        tf.constant(kernel.astype(np.float32)),
        output_shape=(count, 2 * height, 2 * width, kernel.shape[2]),
        strides=2,
        padding="SAME",
    ).numpy()


def _transposed_bias(kernel: np.ndarray, bias: np.ndarray, shift_image: np.ndarray) -> np.ndarray:
    """The constant image a deconvolution adds when its input is shifted by `shift_image`:
    zero padding makes it differ at the borders, so it is computed, not folded."""
    return _deconvolve(shift_image[None], kernel)[0].astype(np.float64) + bias


def _check_transposed(layer) -> None:
    if tuple(layer.strides) != (2, 2) or layer.padding != "same" or layer.use_bias is False:
        raise ExportError(f"cannot fold {layer.name}: expected stride 2, 'same' padding, a bias")


def _weights(layer) -> tuple[np.ndarray, np.ndarray]:
    kernel, bias = layer.get_weights()
    return kernel.astype(np.float64), bias.astype(np.float64)


def _affine(norm) -> tuple[np.ndarray, np.ndarray]:
    """Batch norm in inference mode as `x * scale + shift`."""
    gamma, beta, mean, variance = (w.astype(np.float64) for w in norm.get_weights())
    scale = gamma / np.sqrt(variance + norm.epsilon)
    return scale, beta - mean * scale
