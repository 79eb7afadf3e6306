"""docs/MODEL_CARD.md, written by `make report` from the metrics and params.yaml like the
README's results: what the exported generator was trained on, its contract, its measured quality
and speed, its limits, and how another project gets it. No hand-typed numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.config import TrainConfig, load_train_config
from pipeline.families import family_of, resolve
from pipeline.reporting.figures import machine_words, read_metrics
from pipeline.storage.files import write_text_atomically

CARD = "docs/MODEL_CARD.md"


# What each quantized operator is in the generator (pipeline/export/quantize.py).
INT8_WORDS = {
    "MatMul": "the dense layers (dynamic quantization)",
    "Conv": "the hidden convolutions (static QDQ quantization)",
}


def model_card(root: Path) -> str:
    train = read_metrics(root, "train")
    export = read_metrics(root, "export")
    quality = read_metrics(root, "evaluate")
    bench = read_metrics(root, "benchmark")
    classifier = read_metrics(root, "classifier")
    settings = resolve(load_train_config(root / "params.yaml"))
    family = family_of(settings)
    contract = family.contract()
    generated, real = quality["generated"], quality["real_reference"]
    shares = generated["class_shares"]
    rarest = min(range(len(shares)), key=shares.__getitem__)
    sizes = {name: (root / "models" / name).stat().st_size / 1e6 for name in MODEL_FILES}
    int8 = (
        f"{' and '.join(INT8_WORDS[op] for op in reversed(export['int8_operators']))} in int8, "
        "the rest float32"
        if export["int8_quantized"]
        else "the float32 graph: int8 was not faithful enough (its metadata says why)"
    )
    lines = [
        "# Model card: the DCGAN digit generator",
        "",
        "Written by `make report` from `metrics/*.json` and `params.yaml`; do not edit.",
        "",
        "## What it is",
        "",
        "A generator of 28x28 grey handwritten digits: the classic CS231n-style DCGAN generator "
        "(dense 1024, dense 7x7x128, two stride-2 transposed convolutions, batch norm and ReLU, "
        "tanh output) exported to ONNX. " + family.describe(),
        "",
        f"- `models/generator.onnx`: float32, {sizes['generator.onnx']:.1f} MB.",
        f"- `models/generator-int8.onnx`: {sizes['generator-int8.onnx']:.1f} MB, {int8}; "
        f"its images differ from the float32 model's by {export['int8_mean_abs_diff']:.4f} on "
        "average on the [-1, 1] scale.",
        f"- Trained on the {settings_text(train, settings)}.",
        f"- Data: the `{train['training_set']}` training split's {train['training_images']:,} "
        "images, the SHA-256 of the file in the model's metadata (`train_images_sha256`); the "
        "test split was never seen in training or in choosing the weights.",
        "",
        "## Contract",
        "",
        f"Input `z`: float32 `(N, {settings.noise_dim})`, N dynamic, uniform noise in [-1, 1]"
        + "".join(f"; input `{name}`" for name in contract.input_names[1:])
        + (
            " (the model's metadata gives their types and ranges)."
            if contract.input_names[1:]
            else "."
        )
        + " Output `images`: float32 `(N, 28, 28, 1)` in [-1, 1]; pixels "
        "`round((x + 1) * 127.5)`. The model's metadata says the same to a program. A seed "
        "gives the same noise, so the same digits, in Python (`dcgan sample`), the browser and "
        "Node (`docs/CONTRACT.md`, Seeded noise). Specification: "
        "[CONTRACT.md](CONTRACT.md), [the metadata schema](generator-metadata.schema.json).",
        "",
        "## Measured quality",
        "",
        f"{quality['samples']:,} samples from seed 0 against the {quality['test_images']:,} "
        f"MNIST test images, in the features of an MNIST classifier "
        f"({100 * classifier['test_accuracy']:.2f}% test accuracy); the real row is "
        f"{quality['samples']:,} real training images measured the same way (the floor):",
        "",
        "| measure | float32 | int8 | real |",
        "| --- | ---: | ---: | ---: |",
    ]
    for key, label, digits in CARD_ROWS:
        values = (generated[key], quality["generated_int8"][key], real[key])
        lines.append(f"| {label} | " + " | ".join(f"{v:.{digits}f}" for v in values) + " |")
    lines += ["", "## Speed", "", *speed_lines(bench, root)]
    lines += [
        "",
        "## Limits",
        "",
        "- MNIST-style digits only: 28x28, grey, white on black, centred; nothing else.",
        f"- Not every image is a clean digit: its Frechet distance is "
        f"{generated['frechet_distance'] / real['frechet_distance']:.1f}x the real-data floor, "
        f"and the classifier is unsure of {100 * generated['unsure_share']:.2f}% of them "
        f"(real images: {100 * real['unsure_share']:.2f}%). Check images before using them as "
        "training data.",
        f"- The digits are not drawn equally often: the rarest, {rarest}, is "
        f"{100 * shares[rarest]:.1f}% of the samples (10% if even), and recall "
        f"{generated['recall']:.2f} against the real data's {real['recall']:.2f} says some "
        "ways of writing are missing.",
        "- It carries MNIST's own biases: digits written by American Census Bureau employees and "
        "high-school students around 1990.",
        "- Images from the same seed are equal across runtimes within one grey level, not bit "
        "for bit (each runtime rounds floats its own way); use the float32 model when exact "
        "images matter.",
        "",
        "## How to get it",
        "",
        "From a clone: `make run` (or `dvc pull` from the project's DVC remote). From another "
        "project, by name (dvc.yaml declares both files as model artifacts): "
        "`dvc artifacts get <git URL of this repository> generator` (or `generator-int8`), "
        "once a version is tagged (`git tag -a generator@v1.0.0 -m ...`, GTO's convention) and "
        "the models are pushed (`dvc push`).",
    ]
    return "\n".join(lines) + "\n"


MODEL_FILES = ("generator.onnx", "generator-int8.onnx")
CARD_ROWS = [
    ("frechet_distance", "Frechet distance (lower is better)", 3),
    ("classifier_score", "classifier score (max 10)", 3),
    ("precision", "precision (fidelity)", 3),
    ("recall", "recall (diversity)", 3),
    ("smallest_class_share", "smallest class share (0.1 if even)", 3),
    ("unsure_share", "share the classifier is unsure of", 4),
]


def settings_text(train: dict[str, Any], settings: TrainConfig) -> str:
    best = train.get("best_validation_step")
    chosen = (
        f"; exported: the weight average at step {best}, the lowest validation Frechet "
        f"distance tracked ({train['best_validation_frechet_distance']:.3f})"
        if best and settings.export_weights == "best"
        else ""
    )
    machine = f" ({machine_words(train['machine'])})" if train.get("machine") else ""
    return (
        f"`{train['training_set']}` training split for {train['epochs']} epochs ({train['steps']} "
        f"steps, batch {settings.batch_size}, {settings.loss} loss) in {train['precision']} on "
        f"{train['device']}{machine}, {train['train_seconds']:.0f} s{chosen}; every setting is "
        "the `train` section of params.yaml, also in the model's metadata (`train_params`)"
    )


def speed_lines(bench: dict[str, Any], root: Path) -> list[str]:
    rates = {e: bench[e]["samples_per_second"] for e in ("onnxruntime", "onnxruntime_int8")}
    sizes = [size for size in ("1", "64", "256") if size in rates["onnxruntime"]]
    machine = f" on {machine_words(bench['machine'])}" if bench.get("machine") else ""
    lines = [
        f"Native onnxruntime{machine} (`make bench`), samples/s: "
        + "; ".join(
            f"batch {size}: float32 {rates['onnxruntime'][size]:,.0f}, int8 "
            f"{rates['onnxruntime_int8'][size]:,.0f}"
            for size in sizes
        )
        + f". Batch-1 latency p50 {bench['onnxruntime']['latency_ms']['p50']:.2f} ms.",
    ]
    if (root / "metrics/web_benchmark.json").is_file():
        web = read_metrics(root, "web_benchmark")
        threads = f"threads_{web['threads'][-1]}"
        engines = web["samples_per_second"]
        rates = "; ".join(
            f"{name}: browser {engines[name]['browser'][threads]['64']:,.0f}, Node "
            f"{engines[name]['node'][threads]['64']:,.0f}"
            for name in engines
        )
        lines += [
            "",
            f"In a web page ({web['browser']}, onnxruntime-web WASM) and in Node "
            f"(onnxruntime-node), {web['threads'][-1]} threads, batch 64, samples/s "
            f"(`make bench-web`): {rates}. The page's first grid of 64 appears "
            f"{web['first_grid_ms']['median']:.0f} ms after navigation (median).",
        ]
    return lines


def write_model_card(root: Path) -> None:
    write_text_atomically(root / CARD, model_card(root))
