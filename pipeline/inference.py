"""The trained generator rewritten for fast inference: the same function, fewer and batched ops.

What onnxruntime spends its time on in the Keras graph as tf2onnx converts it: its CPU
`ConvTranspose` goes image by image, and every batch norm is a multiply and an add over the
whole activation. The rewrite, exact up to float rounding (the export check holds it to
TensorFlow's output):

- Batch norm is folded into the weights next to it. After a ReLU, `bn(relu(a)) = relu(a) * s + t`:
  the scale goes into the following layer when that layer mixes only channels (dense, or the
  per-channel batch norm before the last transposed convolution); the per-feature batch norm
  before the first transposed convolution has a different scale at every pixel, so its scale
  goes into the preceding dense instead (`relu(a) * s = sign(s) * relu(a * |s|)`). Shifts go
  into the next layer's bias, which for a transposed convolution is a constant image.
- A stride-2, 4x4, "same" transposed convolution is four 2x2 convolutions, one per output pixel
  phase. One 2x2 convolution over the zero-padded input makes all four as channels; a
  depth-to-space and a one-pixel crop put the pixels in place. onnxruntime runs that convolution
  over the whole batch at matrix-multiply speed.
"""

from __future__ import annotations

import numpy as np

from pipeline.errors import ExportError

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


def folded_generator(generator):
    """A `tf.function` `z -> images` equal to `generator(z, training=False)`, built for speed."""
    import tensorflow as tf

    layers = [layer for layer in generator.layers if type(layer).__name__ != "InputLayer"]
    kinds = tuple(type(layer).__name__ for layer in layers)
    if kinds != ARCHITECTURE:
        raise ExportError(f"cannot fold a generator made of {', '.join(kinds)}")
    dense1, norm1, dense2, norm2, reshape, deconv1, norm3, deconv2 = layers
    _check_transposed(deconv1)
    _check_transposed(deconv2)
    w1, b1 = _weights(dense1)
    w2, b2 = _weights(dense2)
    k1, c1 = _weights(deconv1)
    k2, c2 = _weights(deconv2)
    scale1, shift1 = _affine(norm1)
    scale2, shift2 = _affine(norm2)
    scale3, shift3 = _affine(norm3)
    shape = tuple(reshape.target_shape)  # (7, 7, 128)

    # norm1 into dense2; norm2's scale into dense2 too (see the module docstring).
    w2, b2 = scale1[:, None] * w2, shift1 @ w2 + b2
    w2, b2 = w2 * np.abs(scale2), b2 * np.abs(scale2)
    sign2 = np.sign(scale2).reshape(shape)
    # norm2's shift into deconv1's bias; norm3 (one scale per channel) into deconv2.
    bias1 = _transposed_bias(k1, c1, shift2.reshape(shape))
    bias2 = _transposed_bias(k2, c2, np.broadcast_to(shift3, bias1.shape))
    k2 = k2 * scale3[None, None, None, :]
    # dense2's features in channel-major order: its output reshapes straight to NCHW, the
    # layout onnxruntime's convolutions use, so the converted graph needs no transpose.
    channel_major = np.arange(w2.shape[1]).reshape(shape).transpose(2, 0, 1).ravel()
    w2, b2, sign2 = w2[:, channel_major], b2[channel_major], sign2.transpose(2, 0, 1)
    w1, b1, w2, b2, sign2 = (a.astype(np.float32) for a in (w1, b1, w2, b2, sign2))
    phases = np.concatenate([phase_kernel(k1, *phase) for phase in PHASES], axis=-1)
    packed_bias = np.concatenate([_packed_phase(bias1, *phase) for phase in PHASES], axis=-1)
    packed_kernel, image_bias = packed_transposed(k2, bias2)
    phases, packed_bias = phases.astype(np.float32), packed_bias.astype(np.float32)

    @tf.function(input_signature=(tf.TensorSpec((None, w1.shape[0]), tf.float32, name="z"),))
    def generate(z):
        # numpy constants, not captured tensors: they become constants of the traced graph.
        x = tf.nn.relu(tf.matmul(z, w1) + b1)
        x = tf.nn.relu(tf.matmul(x, w2) + b2)
        x = tf.reshape(x, (-1, shape[2], shape[0], shape[1]))
        if np.any(sign2 < 0):
            x = x * sign2
        x = tf.transpose(x, (0, 2, 3, 1))
        # deconv1: all four output phases at once, packed side by side as channel blocks.
        packed = tf.nn.relu(
            tf.nn.conv2d(x, phases, 1, [[0, 0], [1, 1], [1, 1], [0, 0]]) + packed_bias
        )
        # deconv2 on the packed phases, then its 4x4 output blocks put in place.
        y = tf.nn.conv2d(packed, packed_kernel, 1, "VALID") + image_bias
        return tf.nn.depth_to_space(tf.tanh(y), 4)

    return generate


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
    unit impulses. Returns the kernel `(2, 2, 4 in, 16 out)` and bias `(H, W, 16 out)`.
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


def _packed_phase(image: np.ndarray, py: int, px: int) -> np.ndarray:
    """Phase `(py, px)` of a bias image `(2H, 2W, C)` at its packed place `(H + 1, W + 1, C)`,
    `packed[r] = image[2 r - p]`. The one packed row and column outside the image get the lowest
    float, so the ReLU after the bias makes them the zeros the next deconvolution pads with."""
    height, width, channels = image.shape
    packed = np.full((height // 2 + 1, width // 2 + 1, channels), np.finfo(np.float32).min)
    packed[py : py + height // 2, px : px + width // 2] = image[py::2, px::2]
    return packed


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
