"""InfoGAN: the export contract with codes, the sampler and
`dcgan sample` with codes and sweeps, on a tiny trained model."""

import json

import numpy as np
import onnxruntime as ort
import pytest

from conftest import invoke, invoke_ok
from pipeline.errors import SamplerError
from pipeline.runtime import contract, traversals
from pipeline.runtime.sampler import Sampler
from pipeline.storage.images import load_png, make_grid, to_uint8


class TestExportedInfogan:
    def test_the_onnx_inputs_and_metadata_declare_the_codes(self, infogan_model):
        session = ort.InferenceSession(str(infogan_model / "models" / "generator.onnx"))
        inputs = [(i.name, i.type, i.shape[1:]) for i in session.get_inputs()]
        assert inputs == [
            (contract.NOISE_INPUT, "tensor(float)", [8]),
            (contract.CATEGORICAL_CODE_INPUT, "tensor(int64)", []),
            (contract.CONTINUOUS_CODE_INPUT, "tensor(float)", [2]),
        ]
        metadata = session.get_modelmeta().custom_metadata_map
        assert metadata["categorical_codes"] == "10"
        assert metadata["continuous_codes"] == "2"
        assert json.loads(metadata["continuous_code_range"]) == [-1.0, 1.0]
        assert "classes" not in metadata
        read = contract.read(session, "generator.onnx")
        assert read.code_names == ("category", "c1", "c2")

    def test_the_int8_model_takes_the_same_codes(self, infogan_model):
        sampler = Sampler(infogan_model / "models" / "generator-int8.onnx")
        assert sampler.contract.code_names == ("category", "c1", "c2")
        assert sampler.sample(4, codes={"category": 2}).shape == (4, 28, 28)

    def test_codes_change_the_images_and_fixing_them_is_reproducible(self, infogan_model):
        sampler = Sampler(infogan_model / "models" / "generator.onnx")
        free = sampler.sample(8, seed=1)
        fixed = sampler.sample(8, seed=1, codes={"category": 4, "c1": -1.0})
        again = sampler.sample(8, seed=1, codes={"category": "4", "c1": "-1"})
        assert np.array_equal(fixed, again)
        assert not np.array_equal(free, fixed)
        # Fixing a code is feeding it: the same images as the session given those inputs.
        noise = sampler.seeded_noise(1, 8)
        noise[:, 8] = -1.0
        direct = sampler.session.run(
            None,
            {
                contract.NOISE_INPUT: noise[:, :8],
                contract.CATEGORICAL_CODE_INPUT: np.full(8, 4, np.int64),
                contract.CONTINUOUS_CODE_INPUT: noise[:, 8:],
            },
        )[0]
        assert np.array_equal(fixed, to_uint8(direct)[..., 0])

    def test_a_sweep_varies_only_its_code_across_columns(self, infogan_model):
        sampler = Sampler(infogan_model / "models" / "generator.onnx")
        grid = traversals.sweep(sampler, "c2", 3, seed=5, columns=6, codes={"category": 1})
        assert grid.shape == (3, 6, 28, 28)
        ends = sampler.sample(3, seed=5, codes={"category": 1, "c2": 1.0})
        assert np.array_equal(grid[:, -1], ends)
        categories = traversals.sweep(sampler, "category", 2, seed=5)
        assert categories.shape == (2, 10, 28, 28)
        assert np.array_equal(categories[:, 7], sampler.sample(2, seed=5, codes={"category": 7}))

    @pytest.mark.parametrize(
        ("given", "message"),
        [
            ({"slant": 0.5}, "unknown code 'slant': this model's codes are category (0-9), c1"),
            ({"category": 10}, "code category: expected a whole number 0-9, got 10"),
            ({"category": 2.5}, "code category: expected a whole number 0-9"),
            ({"c1": 1.5}, "code c1: expected a number in [-1, 1], got 1.5"),
            ({"c2": "nan"}, "code c2: expected a number in [-1, 1]"),
            ({"c1": "left"}, "code c1: expected a number, got 'left'"),
        ],
    )
    def test_bad_codes_are_one_clear_error(self, infogan_model, given, message):
        sampler = Sampler(infogan_model / "models" / "generator.onnx")
        with pytest.raises(SamplerError, match=None) as raised:
            sampler.sample(2, codes=given)
        assert message in str(raised.value)

    def test_labels_are_refused_with_the_codes_named(self, infogan_model):
        sampler = Sampler(infogan_model / "models" / "generator.onnx")
        with pytest.raises(SamplerError, match="InfoGAN model: it takes codes, not labels"):
            sampler.sample(2, label=3)
        with pytest.raises(SamplerError, match="cannot sweep 'c3'"):
            traversals.sweep(sampler, "c3", 2)
        with pytest.raises(SamplerError, match="code c1 is swept: do not also fix it"):
            traversals.sweep(sampler, "c1", 2, codes={"c1": 0})

    def test_other_models_take_no_codes(self, exported_model):
        sampler = Sampler(exported_model / "models" / "generator.onnx")
        with pytest.raises(SamplerError, match="takes no codes"):
            sampler.sample(2, codes={"category": 1})
        with pytest.raises(SamplerError, match="takes no codes to sweep"):
            traversals.sweep(sampler, "category", 2)


class TestSampleCommand:
    def test_codes_and_sweeps_write_files(self, infogan_model, tmp_path):
        model = str(infogan_model / "models" / "generator.onnx")
        grid = tmp_path / "grid.png"
        invoke_ok(
            "sample",
            "--model",
            model,
            "-n",
            "4",
            "--code",
            "category=3",
            "--code",
            "c1=0.8",
            "--out",
            str(grid),
        )
        sweep = tmp_path / "sweep.png"
        invoke_ok("sample", "--model", model, "-n", "3", "--sweep", "c1", "--out", str(sweep))
        expected = make_grid(np.zeros((30, 28, 28), np.uint8), 10).shape  # 3 rows of 10
        assert load_png(sweep).shape == (2 * expected[0], 2 * expected[1])
        gif = tmp_path / "sweep.gif"
        invoke_ok("sample", "--model", model, "-n", "2", "--sweep", "category", "--out", str(gif))
        assert gif.stat().st_size > 0

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--code", "c1"], "expected NAME=VALUE, got 'c1'"),
            (["--code", "c1=0", "--code", "c1=1"], "code c1 given twice"),
            (["--code", "tilt=0"], "unknown code 'tilt'"),
            (["--sweep", "c1", "--out", "x.npy"], "--sweep writes a .png grid or a .gif"),
            (["--out", "x.gif"], "a .gif needs --interpolate or --sweep"),
            (["--code", "c1=0", "--interpolate", "--out", "x.gif"], "--code fixes codes"),
        ],
    )
    def test_bad_use_is_one_line_and_writes_nothing(self, infogan_model, tmp_path, args, message):
        model = str(infogan_model / "models" / "generator.onnx")
        args = [str(tmp_path / a) if a.startswith("x.") else a for a in args]
        result = invoke("sample", "--model", model, *args)
        assert result.exit_code != 0
        assert message in result.output
        assert "Traceback" not in result.output
        assert list(tmp_path.iterdir()) == []
