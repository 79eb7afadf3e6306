"""The commands apps and people run on the exported models: sample, classify, encode,
reconstruct, serve."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from pipeline.cli.group import (
    QUICK_START_IMAGES,
    count_option,
    file_option,
    main,
)


def sample_output_path(ctx: click.Context, param: click.Parameter, value: Path) -> Path:
    """A .png, .npy or .gif path in an existing folder: nothing is created on the user's behalf."""
    if not value.parent.is_dir():
        raise click.BadParameter(f"the folder {value.parent} does not exist")
    if value.suffix.lower() not in (".png", ".npy", ".gif"):
        raise click.BadParameter(
            f"{value.name}: the file must end in .png (a grid), .npy or, with --interpolate or "
            "--sweep, .gif"
        )
    return value


def code_settings(ctx: click.Context, param: click.Parameter, values) -> dict[str, str]:
    """`NAME=VALUE` pairs as a mapping; the model checks names and values once it is open."""
    settings = {}
    for value in values:
        name, equals, number = value.partition("=")
        if not equals or not name.strip() or not number.strip():
            raise click.BadParameter(f"expected NAME=VALUE, got {value!r}")
        if name.strip() in settings:
            raise click.BadParameter(f"code {name.strip()} given twice")
        settings[name.strip()] = number.strip()
    return settings


@main.command()
@file_option("--model", "models/generator.onnx", "The exported ONNX generator.")
@click.option(
    "-n",
    "--count",
    type=click.IntRange(min=1),
    default=None,
    help="How many images (with --labels all: per class; with --sweep: rows).  [default: 64; "
    "8 per class; 10 rows]",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0, max=2**64 - 1),
    default=0,
    show_default=True,
    help="Noise seed: the same digits as the web page and the Node sampler draw from it.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default="samples.png",
    show_default=True,
    callback=sample_output_path,
    help="A .png grid, a .npy of uint8 images (N, 28, 28), or with --interpolate or --sweep "
    "a .gif.",
)
@click.option(
    "--interpolate",
    is_flag=True,
    help="Write a GIF of N latent walks instead: each visits --points random noise vectors "
    "and comes back, --steps frames between two.",
)
@count_option("--points", default=4, help="With --interpolate: noise vectors per walk.")
@count_option("--steps", default=12, help="With --interpolate: frames from one to the next.")
@click.option(
    "--label",
    type=int,
    default=None,
    help="Conditional models: draw this class (a digit 0-9). Without it, the classes in turn "
    "(and --interpolate morphs from one to the next).",
)
@click.option(
    "--labels",
    type=click.Choice(["all"]),
    default=None,
    help="Conditional models: `all` draws N of every class, one row per class (each column "
    "one noise vector).",
)
@click.option(
    "--code",
    "codes",
    multiple=True,
    metavar="NAME=VALUE",
    callback=code_settings,
    help="InfoGAN models: fix a code, e.g. --code category=3 --code c1=0.8 (continuous codes "
    "c1, c2, ... in [-1, 1]). Codes not given are drawn from the seed.",
)
@click.option(
    "--sweep",
    metavar="NAME",
    default=None,
    help="InfoGAN models: vary one code across the columns (every category, or a continuous "
    "code from -1 to 1), one noise vector per row; a .gif animates it instead.",
)
@click.option(
    "--provider",
    "providers",
    multiple=True,
    metavar="NAME",
    help="onnxruntime execution provider, e.g. cuda, coreml, dml (repeat it for a fallback "
    "order; the CPU runs what a provider cannot).  [default: cpu]",
)
def sample(
    model: Path,
    count: int | None,
    seed: int,
    out: Path,
    interpolate: bool,
    points: int,
    steps: int,
    label: int | None,
    labels: str | None,
    codes: dict[str, str],
    sweep: str | None,
    providers: tuple[str, ...],
) -> None:
    """Draw digits from the ONNX generator (onnxruntime only, no TensorFlow).

    The same model, count, seed, labels and codes give the same bytes.
    """
    from pipeline.runtime import sample_files
    from pipeline.runtime.sampler import Sampler

    suffix = out.suffix.lower()
    animated = interpolate or sweep is not None
    if (interpolate and suffix != ".gif") or (suffix == ".gif" and not animated):
        raise click.BadParameter(
            "a .gif needs --interpolate or --sweep, and --interpolate writes a .gif",
            param_hint="'--out'",
        )
    if sweep is not None and (interpolate or labels or suffix == ".npy"):
        raise click.BadParameter(
            "--sweep writes a .png grid or a .gif: not with --interpolate, --labels or .npy",
            param_hint="'--sweep'",
        )
    if labels and (label is not None or interpolate):
        raise click.BadParameter(
            "--labels all draws every class: not with --label or --interpolate",
            param_hint="'--labels'",
        )
    count = count or (8 if labels else 10 if sweep is not None else 64)
    if not model.exists():
        raise click.ClickException(
            f"{model}: no such model file; `make run` trains and exports one "
            "(or name another with --model)"
        )
    sampler = Sampler(
        model, quick_start=count <= QUICK_START_IMAGES, providers=providers or ("cpu",)
    )
    if codes and (labels or interpolate):
        raise click.BadParameter(
            "--code fixes codes of a grid, a .npy or a sweep: not with --labels or --interpolate",
            param_hint="'--code'",
        )
    if sweep is not None:
        sample_files.save_sweep(sampler, out, sweep, count, seed=seed, codes=codes)
    elif labels:
        sample_files.save_each_class(sampler, out, count, seed=seed)
    elif interpolate:
        sample_files.save_walk(
            sampler, out, count, seed=seed, points=points, steps=steps, label=label
        )
    elif suffix == ".npy":
        sample_files.save_npy(sampler, out, count, seed=seed, label=label, codes=codes)
    else:
        sample_files.save_grid(sampler, out, count, seed=seed, label=label, codes=codes)
    click.echo(str(out))


@main.command()
@file_option(
    "--model",
    "models/family/classifier.onnx",
    "An exported digit classifier (the semi-supervised model's, or its baseline).",
)
@click.argument(
    "files", nargs=-1, metavar="IMAGES...", type=click.Path(dir_okay=False, path_type=Path)
)
def classify(model: Path, files: tuple[Path, ...]) -> None:
    """Print the digit each image shows: one line per image, its name, the digit and its
    probability (onnxruntime only, no TensorFlow).

    IMAGES: 28x28 grey PNGs, or .npy arrays of uint8 (N, 28, 28) pixels (what `dcgan sample
    --out x.npy` writes) or floats (N, 28, 28, 1) in [-1, 1].
    """
    from pipeline.runtime.classify import Classifier
    from pipeline.runtime.image_files import read_images

    if not files:
        raise click.UsageError("name at least one image (PNG or .npy)")
    if not model.exists():
        raise click.ClickException(
            f"{model}: no such model file; `dvc exp run -S train.model=semi-supervised` trains "
            "and exports one (or name another with --model)"
        )
    names, inputs = read_images(list(files))
    probabilities = Classifier(model).predict(inputs)
    for name, row in zip(names, probabilities, strict=True):
        click.echo(f"{name}\t{int(row.argmax())}\t{float(row.max()):.4f}")


IMAGES_ARGUMENT = click.argument(
    "files", nargs=-1, metavar="IMAGES...", type=click.Path(dir_okay=False, path_type=Path)
)
ENCODER_HINT = "`dvc exp run -S train.model=bigan` trains and exports one"


def output_option(default: str, help: str):
    """`--out`: a file ending as `default` does, in an existing folder."""
    suffix = Path(default).suffix

    def check(ctx: click.Context, param: click.Parameter, value: Path) -> Path:
        if not value.parent.is_dir():
            raise click.BadParameter(f"the folder {value.parent} does not exist")
        if value.suffix.lower() != suffix:
            raise click.BadParameter(f"{value.name}: the file must end in {suffix}")
        return value

    return click.option(
        "--out",
        type=click.Path(dir_okay=False, path_type=Path),
        default=default,
        show_default=True,
        callback=check,
        help=help,
    )


def read_named_images(files: tuple[Path, ...], model: Path, hint: str):
    """The images of `files` as the models read them, once `model` exists."""
    from pipeline.runtime.image_files import read_images

    if not files:
        raise click.UsageError("name at least one image (PNG, .npy or IDX)")
    if not model.exists():
        raise click.ClickException(f"{model}: no such model file; {hint} (or name another)")
    return read_images(list(files))


@main.command()
@file_option("--model", "models/family/encoder.onnx", "The BiGAN model's exported encoder.")
@IMAGES_ARGUMENT
@output_option("codes.npy", "A .npy of float32 codes (N, noise_dim), one row per image in order.")
@click.option(
    "--features",
    is_flag=True,
    help="Write the encoder's features (N, 1024), the layer before the codes, instead.",
)
def encode(model: Path, files: tuple[Path, ...], out: Path, features: bool) -> None:
    """Encode images into the generator's noise with a BiGAN encoder (onnxruntime only, no
    TensorFlow): `dcgan sample`'s generator redraws them from these codes.

    IMAGES: 28x28 grey PNGs, .npy arrays of uint8 (N, 28, 28) pixels or floats (N, 28, 28, 1)
    in [-1, 1], or IDX image files such as MNIST's.
    """
    import numpy as np

    from pipeline.runtime.encode import Encoder
    from pipeline.storage.files import write_atomically

    names, images = read_named_images(files, model, ENCODER_HINT)
    codes = Encoder(model).encode(images, features=features)
    write_atomically(out, lambda handle: np.save(handle, codes, allow_pickle=False))
    click.echo(f"{out}\t{len(names)} images\t{codes.shape[1]} values each")


@main.command()
@file_option("--encoder", "models/family/encoder.onnx", "The BiGAN model's exported encoder.")
@file_option("--generator", "models/generator.onnx", "The generator of the same run.")
@IMAGES_ARGUMENT
@output_option(
    "reconstructions.png", "A .png grid: each row of images above their reconstructions."
)
@count_option("--columns", default=8, help="Images per row.")
@click.option(
    "--provider",
    "providers",
    multiple=True,
    metavar="NAME",
    help="onnxruntime execution provider of the generator, as for `dcgan sample`.",
)
def reconstruct(
    encoder: Path,
    generator: Path,
    files: tuple[Path, ...],
    out: Path,
    columns: int,
    providers: tuple[str, ...],
) -> None:
    """Draw images back through a BiGAN: each image x beside G(E(x)), the generator's image
    of its code (onnxruntime only, no TensorFlow).

    IMAGES: as for `dcgan encode`.
    """
    from pipeline.runtime.encode import Encoder
    from pipeline.runtime.sampler import Sampler
    from pipeline.storage.images import paired_grid, save_png

    names, images = read_named_images(files, encoder, ENCODER_HINT)
    if not generator.exists():
        raise click.ClickException(f"{generator}: no such model file; name the run's generator")
    model = Encoder(encoder)
    sampler = Sampler(generator, providers=providers or ("cpu",))
    model.check_pairs_with(sampler, encoder)
    reconstructed = model.reconstruct(sampler, images)
    save_png(paired_grid(images, reconstructed, columns), out, scale=3)
    click.echo(f"{out}\t{len(names)} images")


@main.command()
@click.option(
    "--model",
    "models",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="A generator the page offers (repeat for more; the first opens).  [default: "
    "models/generator-int8.onnx and models/generator.onnx]",
)
@click.option(
    "--family-models",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("models/family"),
    show_default=True,
    help="Where the page and the API find the semi-supervised classifier and the BiGAN "
    "encoder, if any.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="0: any free."
)
@click.option(
    "--timeout",
    type=click.FloatRange(0.1, 3600),
    default=10.0,
    show_default=True,
    help="Seconds a client may take to send its request or to read each part of an answer.",
)
def serve(
    models: tuple[Path, ...], family_models: Path, host: str, port: int, timeout: float
) -> None:
    """Serve the web page that draws digits in the browser (onnxruntime-web), with the models,
    and an HTTP API for apps (/api/contract, /api/sample; docs/APPS.md) on the first model.

    Ctrl-C stops it. The page works offline: everything it loads comes from this server.
    """
    from pipeline.runtime.classify import CLASSIFIER_FILE
    from pipeline.runtime.encode import ENCODER_FILE
    from pipeline.serving import serve as web
    from pipeline.serving.api import Api
    from pipeline.serving.http_server import reachable_from_elsewhere, url_host

    chosen = list(models) or [Path(m) for m in web.DEFAULT_MODELS if Path(m).is_file()]
    if not chosen:
        raise click.ClickException(
            "no model to serve: `make run` trains and exports one (or name one with --model)"
        )
    readers = [family_models / name for name in (CLASSIFIER_FILE, ENCODER_FILE)]
    # every model checked first, then the API opens them
    site = web.Site.build(chosen, family=[path for path in readers if path.is_file()])
    api = Api.load(chosen[0], family_models)
    server = web.make_server(dataclasses.replace(site, api=api), host, port, timeout)
    bound_host, bound_port = server.server_address[:2]
    if reachable_from_elsewhere(host):
        click.echo(
            f"Warning: listening on {host}: other machines on the network can reach the page "
            "and the API (use --host 127.0.0.1 to keep them on this one)",
            err=True,
        )
    click.echo(f"Serving the page on http://{url_host(bound_host)}:{bound_port}/ (Ctrl-C stops)")
    click.echo(f"API on {chosen[0]}: {', '.join(api.endpoints())}")
    web.serve_forever(server)
    click.echo("Stopped.")
