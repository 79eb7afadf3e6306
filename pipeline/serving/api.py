"""`dcgan serve`'s HTTP API: the models as a service, for apps that would rather call a URL
than embed onnxruntime.

    GET  /api/contract                     what the models take and give (JSON)
    GET  /api/sample?n=16&seed=7           a PNG grid of n digits; &format=npy: uint8 (n, 28, 28);
                                           &label=3 (conditional), &category=3&c1=0.5 (InfoGAN)
    POST /api/classify   (a PNG or .npy)   each image's digit probabilities (JSON; with the
                                           semi-supervised model's classifier)
    POST /api/encode     (a PNG or .npy)   each image's noise z (JSON; with the BiGAN encoder)

The same arguments give the same bytes as `dcgan sample` (the seeded noise of
docs/CONTRACT.md). Every error is JSON `{"error": "..."}` with a 4xx status. Work is bounded:
`n` and request bodies have limits, and at most `WORKERS` requests run a model at once (the
others wait their turn), so concurrent clients cannot exhaust memory; onnxruntime sessions are
safe to share between threads.
"""

from __future__ import annotations

import io
import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs

import numpy as np

from pipeline.errors import ModelOutputError, PipelineError
from pipeline.runtime.classify import CLASSIFIER_FILE, Classifier
from pipeline.runtime.contract import CODES_OUTPUT, LABEL_INPUT
from pipeline.runtime.encode import ENCODER_FILE, Encoder
from pipeline.runtime.image_files import decode_images
from pipeline.runtime.noise import SEED_LIMIT
from pipeline.runtime.sampler import Sampler
from pipeline.storage.images import make_grid, png_bytes

MAX_IMAGES = 256  # per request, drawn or read
MAX_BODY_BYTES = MAX_IMAGES * 28 * 28 * 4 + 4096  # float32 images and a .npy header
WORKERS = 2
MAX_ARGUMENTS = 32  # query fields a request may carry; no endpoint takes half as many
GRID_SCALE = 2  # as `dcgan sample` writes its PNG grids
JSON_TYPE = "application/json"


class ApiError(PipelineError):
    """A request the API refuses: its HTTP status and a one-line reason."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    body: bytes


@dataclass(frozen=True)
class Api:
    """The served models: a generator, and the family's classifier or encoder where they
    exist."""

    sampler: Sampler
    classifier: Classifier | None = None
    encoder: Encoder | None = None
    running: threading.BoundedSemaphore = field(
        default_factory=lambda: threading.BoundedSemaphore(WORKERS)
    )

    @classmethod
    def load(cls, generator: Path, family_folder: Path) -> Api:
        """The API on the generator file and the models in `family_folder` that exist there
        (a one-line `PipelineError` for a file that is not the model it should be)."""
        classifier, encoder = family_folder / CLASSIFIER_FILE, family_folder / ENCODER_FILE
        return cls(
            Sampler(generator),
            Classifier(classifier) if classifier.is_file() else None,
            Encoder(encoder) if encoder.is_file() else None,
        )

    def handle(self, method: str, route: str, query: str, body: bytes | None) -> Reply:
        """The reply to one request under /api/ (`route` is the rest of the path)."""
        try:
            return self._route(method, route, query, body)
        except ApiError as error:
            return error_reply(error.status, str(error))
        except ModelOutputError as error:  # the served model is broken, not the request
            return error_reply(500, str(error))
        except PipelineError as error:  # arguments the models refuse
            return error_reply(400, str(error))

    def _route(self, method: str, route: str, query: str, body: bytes | None) -> Reply:
        routes = {
            "contract": ("GET", self.contract),
            "sample": ("GET", self.sample),
            "classify": ("POST", self.classify),
            "encode": ("POST", self.encode),
        }
        if route not in routes:
            raise ApiError(404, f"no such endpoint /api/{route}: see /api/contract")
        wanted, action = routes[route]
        if method != wanted:
            raise ApiError(405, f"/api/{route} takes {wanted}, not {method}")
        try:
            arguments = parse_qs(query, keep_blank_values=True, max_num_fields=MAX_ARGUMENTS)
        except ValueError:  # more fields than that: refused before they are read
            raise ApiError(400, f"at most {MAX_ARGUMENTS} arguments") from None
        if any(len(values) > 1 for values in arguments.values()):
            raise ApiError(400, "each argument once")
        single = {name: values[0] for name, values in arguments.items()}
        return action(single, body) if wanted == "POST" else action(single)

    def contract(self, _arguments: dict[str, str]) -> Reply:
        document = {
            "generator": self.sampler.contract.as_json(),
            "max_images": MAX_IMAGES,
            "endpoints": self.endpoints(),
        }
        return json_reply(document)

    def endpoints(self) -> list[str]:
        """The requests this API answers."""
        endpoints = ["GET /api/contract", "GET /api/sample"]
        endpoints += ["POST /api/classify"] if self.classifier else []
        endpoints += ["POST /api/encode"] if self.encoder else []
        return endpoints

    def sample(self, arguments: dict[str, str]) -> Reply:
        arguments = dict(arguments)
        n = _whole(arguments.pop("n", "16"), "n", 1, MAX_IMAGES)
        seed = _whole(arguments.pop("seed", "0"), "seed", 0, SEED_LIMIT - 1)
        kind = arguments.pop("format", "png")
        if kind not in ("png", "npy"):
            raise ApiError(400, f"format must be png or npy, got {_shown(kind)}")
        label_text = arguments.pop(LABEL_INPUT, "")  # named as the generator's input
        label = None
        if label_text != "":
            label = self.sampler.check_label(_whole(label_text, LABEL_INPUT, -(2**31), 2**31))
        names = self.sampler.contract.code_names
        codes = {name: arguments.pop(name) for name in names if name in arguments}
        if arguments:
            raise ApiError(400, f"unknown argument {_shown(sorted(arguments)[0])}")
        with self.running:
            images = self.sampler.sample(n, seed=seed, label=label, codes=codes or None)
        if kind == "npy":
            buffer = io.BytesIO()
            np.save(buffer, images, allow_pickle=False)
            return Reply(200, "application/octet-stream", buffer.getvalue())
        return Reply(200, "image/png", png_bytes(make_grid(images), GRID_SCALE))

    def classify(self, arguments: dict[str, str], body: bytes | None) -> Reply:
        if self.classifier is None:
            raise ApiError(404, "no classifier is served (train.model: semi-supervised makes one)")
        images = self._images(arguments, body)
        with self.running:
            probabilities = self.classifier.predict(images)
        return json_reply(
            {
                "digits": probabilities.argmax(axis=1).tolist(),
                "probabilities": np.round(probabilities, 6).tolist(),
            }
        )

    def encode(self, arguments: dict[str, str], body: bytes | None) -> Reply:
        if self.encoder is None:
            raise ApiError(404, "no encoder is served (train.model: bigan makes one)")
        images = self._images(arguments, body)
        with self.running:
            codes = self.encoder.encode(images)
        return json_reply({CODES_OUTPUT: codes.tolist()})

    def _images(self, arguments: dict[str, str], body: bytes | None) -> np.ndarray:
        if arguments:
            raise ApiError(400, f"unknown argument {_shown(sorted(arguments)[0])}")
        if not body:
            raise ApiError(400, "send one PNG or .npy file as the request body")
        images = decode_images(body, "the request body")
        if len(images) > MAX_IMAGES:
            raise ApiError(413, f"at most {MAX_IMAGES} images per request, got {len(images)}")
        return images


def json_reply(document: object, status: int = 200) -> Reply:
    return Reply(status, JSON_TYPE, json.dumps(document).encode())


def error_reply(status: int, message: str) -> Reply:
    return json_reply({"error": message}, status)


def _whole(text: str, name: str, low: int, high: int) -> int:
    """`text` as a whole number in [low, high], or a 400."""
    stripped = text.strip()
    if not re.fullmatch(r"-?[0-9]{1,40}", stripped):
        raise ApiError(400, f"{name} must be a whole number, got {_shown(text)}")
    value = int(stripped)
    if not low <= value <= high:
        raise ApiError(400, f"{name} must be from {low} to {high}, got {value}")
    return value


def _shown(text: str) -> str:
    """A client's text quoted for an error message, at most 40 characters of it."""
    return json.dumps(text[:40] + ("..." if len(text) > 40 else ""))
