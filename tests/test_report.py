"""The README results section is written from the metrics files, and replaced, not appended."""

import json

import pytest

from conftest import QUICK_BENCHMARK, TINY_STAGES, invoke_ok, set_params, stage_args
from pipeline.errors import PipelineError
from pipeline.reporting.report import (
    END,
    LEDGER,
    START,
    TARGET_LABELS,
    experiment_rows,
    merge_ledger,
)


def test_report_writes_the_measured_numbers_and_images(exported_model, monkeypatch):
    monkeypatch.chdir(exported_model)
    train = {**TINY_STAGES["train"], "batch_size": 8}  # 8 batches for train_benchmark
    set_params(
        exported_model,
        **{**TINY_STAGES, "train": train},
        benchmark=QUICK_BENCHMARK,
        train_benchmark={"windows": 1, "steps": 1},
    )
    for stage in ("benchmark", "classifier", "evaluate", "train_benchmark"):
        invoke_ok(*stage_args(stage))
    readme = exported_model / "README.md"
    readme.write_text(f"# Title\n\nintro\n\n{START}\nold numbers\n{END}\n\n## After\n")

    invoke_ok("report", "--readme", str(readme), "--no-experiments")
    invoke_ok("report", "--readme", str(readme), "--no-experiments")  # idempotent

    text = readme.read_text()
    assert text.count(START) == 1
    assert "old numbers" not in text
    assert text.startswith("# Title\n\nintro\n\n")
    assert text.endswith(f"{END}\n\n## After\n")
    quality = json.loads((exported_model / "metrics/evaluate.json").read_text())
    generated, reference = quality["generated"], quality["real_reference"]
    assert (
        f"| Frechet distance, classifier features (lower is better) | "
        f"{generated['frechet_distance']:.3f} | {reference['frechet_distance']:.3f} |" in text
    )
    export = json.loads((exported_model / "metrics/export.json").read_text())
    assert f"{export['max_abs_diff']:.2e}" in text
    bench = json.loads((exported_model / "metrics/benchmark.json").read_text())
    rates = {e: bench[e]["samples_per_second"]["4"] for e in ("onnxruntime", "tensorflow")}
    assert f"| 4 | {rates['onnxruntime']:,.0f} | {rates['tensorflow']:,.0f} | " in text
    for name, target in bench["targets"].items():
        measured = "-" if target["measured"] is None else f"{target['measured']:.3f}"
        assert f"| {TARGET_LABELS[name]} | {target['target']} | {measured} | " in text
    assert "| training step, project / plain float32 tf.function | 2.5 | " in text
    for name in ("final_grid.png", "progress.gif"):
        assert (exported_model / "docs/images" / name).is_file()

    card = (exported_model / "docs/MODEL_CARD.md").read_text()
    assert f"| Frechet distance (lower is better) | {generated['frechet_distance']:.3f} | " in card
    int8_rate = bench["onnxruntime_int8"]["samples_per_second"]["1"]
    assert f"int8 {int8_rate:,.0f}" in card
    assert "`dvc artifacts get <git URL of this repository> generator`" in card


def test_experiment_rows_from_dvc_exp_show_json():
    def run(loss, distance, **conditional):
        train = {"loss": loss, "epochs": 3}
        evaluated = {
            "generated": {
                "frechet_distance": distance,
                "classifier_score": 9.0,
                "precision": 0.8,
                "recall": 0.7,
            }
        }
        if conditional:
            train["model"] = "conditional"
            evaluated["conditioning"] = conditional
        return {
            "params": {"params.yaml": {"data": {"train": train}}},
            "metrics": {"metrics/evaluate.json": {"data": evaluated}},
        }

    infogan = run("gan", 6.0)
    infogan["params"]["params.yaml"]["data"]["train"]["model"] = "infogan"
    codes = {"categorical": {"accuracy": 0.95, "digit_of_code": list(range(10))}}
    infogan["metrics"]["metrics/evaluate.json"]["data"]["codes"] = codes
    semi = run("gan", 7.0)
    semi["params"]["params.yaml"]["data"]["train"]["model"] = "semi-supervised"
    errors = {"test_error": 0.012, "baseline_test_error": 0.2, "labelled": 100, "label_seed": 0}
    semi["metrics"]["metrics/evaluate.json"]["data"]["semi_supervised"] = errors
    shown = [
        {"rev": "workspace", "name": None, "data": run("gan", 5.0), "experiments": None},
        {
            "rev": "abc1234def",
            "name": "main",
            "data": run("gan", 5.0000004),  # shows as the workspace's row: listed once
            "experiments": [
                {"name": "lsgan-run", "revs": [{"name": "lsgan-run", "data": run("lsgan", 4.0)}]},
                {"name": "broken", "revs": [{"name": "broken", "data": None}]},
                {
                    "name": "cond",
                    "revs": [{"name": "cond", "data": run("gan", 5.0, label_accuracy=0.9)}],
                },
                {"name": "info", "revs": [{"name": "info", "data": infogan}]},
                {"name": "ssl", "revs": [{"name": "ssl", "data": semi}]},
            ],
        },
    ]
    rows = experiment_rows(shown)
    assert [
        (r["name"], r["model"], r["loss"], r["frechet_distance"], r["label_accuracy"]) for r in rows
    ] == [
        ("workspace", "unconditional", "gan", 5.0, None),
        ("lsgan-run", "unconditional", "lsgan", 4.0, None),
        ("cond", "conditional", "gan", 5.0, 0.9),
        ("info", "infogan", "gan", 6.0, 0.95),
        ("ssl", "semi-supervised", "gan", 7.0, None),
    ]
    assert [r["test_errors"] for r in rows] == [None] * 4 + [(0.012, 0.2)]


def test_the_ledger_keeps_runs_that_dvc_no_longer_shows(tmp_path):
    def row(name, distance, rev=None):
        return {"name": name, "rev": rev, "model": "unconditional", "frechet_distance": distance}

    (tmp_path / "plots/train").mkdir(parents=True)
    (tmp_path / "plots/train/quality.tsv").write_text(
        "step\ttrain_seconds\tfrechet_distance\n300\t10.5\t8.0\n600\t21.0\t4.0\n"
    )
    first = merge_ledger(tmp_path, [row("workspace", 3.0), row("old-run", 4.0, rev="0" * 40)])
    assert [r["curve"] for r in first] == [[(10.5, 8.0), (21.0, 4.0)], []]  # no such commit

    # A later checkout: old-run's ref is gone, the workspace changed, a new run appeared.
    second = merge_ledger(tmp_path, [row("workspace", 2.0), row("new-run", 5.0, rev="0" * 40)])
    assert [(r["name"], r["frechet_distance"]) for r in second] == [
        ("workspace", 2.0),
        ("new-run", 5.0),
        ("old-run", 4.0),
    ]
    assert second[0]["curve"] == [(10.5, 8.0), (21.0, 4.0)]
    assert json.loads((tmp_path / LEDGER).read_text())[2]["name"] == "old-run"
    assert "rev" not in second[2]  # a commit that will not outlive the checkout is not kept

    (tmp_path / LEDGER).write_text("[{")
    with pytest.raises(PipelineError, match=r"docs/experiments\.json: not JSON"):
        merge_ledger(tmp_path, [])


def test_levers_name_every_setting_that_differs_from_the_default():
    from pipeline.reporting.report import levers

    default = {
        "average_decay": 0.999,
        "average_horizon": 0.1,
        "learning_rate": "auto",
        "discriminator_learning_rate": "auto",
        "track_every": 300,
        "export_weights": "best",
        "label_smoothing": 0.0,
        "lr_schedule": "constant",
    }
    assert levers(default) == "average 0.999, G lr auto, D lr auto, best weights"
    changed = {
        **default,
        "learning_rate": 1e-3,
        "beta1": 0.0,
        "average_horizon": 0.25,
        "label_smoothing": 0.1,
    }
    assert levers(changed) == (
        "average 0.999, G lr 0.001, D lr auto, best weights, beta1 0.0, average horizon 0.25, "
        "label smoothing 0.1"
    )
    assert levers({**default, "beta1": 0.5}) == levers({**default, "beta1": "auto"})
    assert levers({**default, "beta2": 0.99}).endswith("best weights, beta2 0.99")
    semi = {**default, "model": "semi-supervised", "labelled_per_class": 5, "label_seed": 2}
    assert levers(semi).endswith("best weights, 50 labels, label seed 2")
    # `auto` is named as what it resolves to for the run's model.
    annealed = levers({**semi, "lr_schedule": "auto"})
    assert annealed.endswith("best weights, anneal, 50 labels, label seed 2")
    assert levers({**default, "lr_schedule": "auto"}) == levers(default)
    # R1 is named where it is taken: not for the semi-supervised discriminator, nor WGAN-GP.
    assert levers({**default, "r1_weight": 1.0}).endswith("best weights, R1 1.0")
    assert levers({**semi, "r1_weight": 1.0}) == levers(semi)
    assert levers({**default, "r1_weight": 1.0, "loss": "wgan-gp"}) == levers(default)
    infogan = {**default, "model": "infogan"}
    assert levers(infogan).endswith("best weights, info weight 1.0, continuous weight 1.0")
    weighed = {**infogan, "info_weight": 0.5, "continuous_info_weight": 0.1}
    assert levers(weighed).endswith("info weight 0.5, continuous weight 0.1")
    jittered = {**weighed, "categorical_jitter": True}
    assert levers(jittered).endswith("continuous weight 0.1, jittered category")


def test_figures_name_the_machine():
    from pipeline.reporting.report import machine_text

    machine = {"cpu": "AMD EPYC", "cores": 2, "features": ["avx2", "avx512_bf16"], "versions": {}}
    assert machine_text(machine) == " (a 2-core AMD EPYC with avx2, avx512_bf16)"
    assert machine_text({**machine, "features": []}).endswith("with none of AVX2, AVX-512, AMX)")
    assert machine_text(None) == ""
