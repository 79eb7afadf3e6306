"""The generated blocks of README.md and docs/ are written from the metrics files, replaced
and not appended, and no metric figure is typed by hand."""

import json
from pathlib import Path

import pytest

from conftest import (
    QUICK_BENCHMARK,
    REPO,
    TINY_STAGES,
    bench_train_args,
    committed_view,
    git,
    invoke_ok,
    set_params,
    stage_args,
)
from pipeline.errors import PipelineError
from pipeline.families.bigan import encoder_block
from pipeline.reporting.ledger import (
    LEDGER,
    LIVE_METRICS,
    experiment_rows,
    merge_ledger,
    read_ledger,
)
from pipeline.reporting.performance import TARGET_LABELS
from pipeline.reporting.report import (
    BLOCKS,
    end_mark,
    render,
    run_seed,
    spread_line,
    start_mark,
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
    for stage in ("benchmark", "classifier", "evaluate"):
        invoke_ok(*stage_args(stage))
    invoke_ok(*bench_train_args())
    for name, (page, _) in BLOCKS.items():
        path = exported_model / page
        path.parent.mkdir(parents=True, exist_ok=True)
        before = path.read_text() if path.is_file() else "# Title\n\nintro\n"
        path.write_text(f"{before}\n{start_mark(name)}\nold numbers\n{end_mark(name)}\n\nafter\n")

    invoke_ok("report", "--root", str(exported_model), "--no-experiments")
    invoke_ok("report", "--root", str(exported_model), "--no-experiments")  # idempotent

    readme = exported_model / "README.md"
    text = readme.read_text()
    assert text.count(start_mark("results")) == 1
    assert "old numbers" not in text
    assert text.startswith("# Title\n\nintro\n\n")
    assert text.endswith(f"{end_mark('families')}\n\nafter\n")
    text += (exported_model / "docs/PERFORMANCE.md").read_text()
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
            "metrics": {
                "metrics/evaluate.json": {"data": evaluated},
                "metrics/train.json": {"data": {"epochs": 3}},  # a finished run's
            },
        }

    infogan = run("gan", 6.0)
    infogan["params"]["params.yaml"]["data"]["train"]["model"] = "infogan"
    codes = {"categorical": {"accuracy": 0.95, "digit_of_code": list(range(10))}}
    infogan["metrics"]["metrics/evaluate.json"]["data"]["codes"] = codes
    semi = run("gan", 7.0)
    semi["params"]["params.yaml"]["data"]["train"]["model"] = "semi-supervised"
    errors = {"test_error": 0.012, "baseline_test_error": 0.2, "labelled": 100, "label_seed": 0}
    semi["metrics"]["metrics/evaluate.json"]["data"]["semi_supervised"] = errors
    bigan = run("gan", 8.0)
    bigan["params"]["params.yaml"]["data"]["train"]["model"] = "bigan"
    encoder = {
        "nearest_neighbour_accuracy_features": 0.97,
        "nearest_neighbour_accuracy_codes": 0.9,
        "reconstruction_ratio": 0.7,
        "digit_kept": 0.8,
        "reconstruction_distance": 10.0,
    }
    bigan["metrics"]["metrics/evaluate.json"]["data"]["bigan"] = encoder
    conditional = run("gan", 5.0, label_accuracy=0.9)
    score = {"trained_on_generated": 0.91, "trained_on_real": 0.98, "digits": 100, "epochs": 5}
    conditional["metrics"]["metrics/evaluate.json"]["data"]["classification_accuracy_score"] = score
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
                    "revs": [{"name": "cond", "data": conditional}],
                },
                {"name": "info", "revs": [{"name": "info", "data": infogan}]},
                {"name": "ssl", "revs": [{"name": "ssl", "data": semi}]},
                {"name": "bi", "revs": [{"name": "bi", "data": bigan}]},
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
        ("bi", "bigan", "gan", 8.0, None),
    ]
    assert [r["test_errors"] for r in rows] == [None] * 4 + [(0.012, 0.2), None]
    scores = [r["classification_accuracy_score"] for r in rows]
    assert scores == [None, None, (0.91, 0.98), None, None, None]
    # a BiGAN run keeps its encoder's four measures, and the table shows them
    assert rows[-1]["encoder"] == {
        k: v for k, v in encoder.items() if k != "reconstruction_distance"
    }
    assert [r["encoder"] for r in rows[:-1]] == [None] * 5
    rows[-1] |= {"epochs": 10, "train_seconds": 600.0, "classifier_score": 8.0}
    table = encoder_block(REPO, rows)
    assert table[-1] == (
        "| `bi` | 10 | defaults | 97.00% | 90.00% | 0.700 | 80.00% | 8.000 | 600 |"
    )
    assert len(table) == 4  # the header, its rule, the targets and the one BiGAN run


def test_a_run_whose_metrics_another_run_wrote_is_left_out():
    """A failed or still running experiment shows its baseline's metrics: their resolved
    settings contradict its params, or, while it trains, it has no training metrics at all
    beside its baseline's evaluation; either way it has no row."""

    def run(name, params, resolved):
        metrics = {"metrics/evaluate.json": {"data": {"generated": {"frechet_distance": 2.0}}}}
        if resolved is not None:
            metrics["metrics/train.json"] = {"data": {"resolved": resolved, "epochs": 3}}
        data = {"params": {"params.yaml": {"data": {"train": params}}}, "metrics": metrics}
        return {"name": name, "revs": [{"name": name, "data": data}]}

    trained = {"model": "unconditional", "loss": "gan", "seed": 0, "beta1": 0.0}
    shown = [
        {
            "rev": "abc",
            "experiments": [
                run("failed", {"loss": "wgan", "seed": 0, "beta1": "auto"}, trained),
                run("seeded", {"loss": "gan", "seed": 1}, trained),
                run("ok", {"model": "auto", "loss": "gan", "seed": 0, "beta1": "auto"}, trained),
                run("older", {"loss": "lsgan"}, {}),
                run("training", {"model": "infogan", "loss": "gan"}, None),
            ],
        }
    ]
    assert [r["name"] for r in experiment_rows(shown)] == ["ok", "older"]


def test_the_ledger_keeps_runs_that_dvc_no_longer_shows(tmp_path):
    def row(name, distance, rev=None):
        return {"name": name, "rev": rev, "model": "unconditional", "frechet_distance": distance}

    tables = tmp_path / LIVE_METRICS
    tables.mkdir(parents=True)
    (tables / "train_seconds.tsv").write_text("step\ttrain_seconds\n300\t10.5\n600\t21.0\n")
    (tables / "frechet_distance.tsv").write_text("step\tfrechet_distance\n300\t8.0\n600\t4.0\n")
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


def test_levers_name_every_setting_of_the_run_that_differs_from_the_default():
    from pipeline.reporting.ledger import levers

    assert levers({"model": "infogan", "epochs": 8, "average_decay": 0.999}) == "defaults"
    changed = {"learning_rate": 1e-3, "beta1": 0.9, "average_horizon": 0.25, "sample_every": 5}
    assert levers(changed) == "learning_rate 0.001, beta1 0.9, average_horizon 0.25"
    infogan = {"model": "infogan", "info_weight": 0.25, "label_seed": 2}
    assert levers(infogan) == "info_weight 0.25"  # label_seed: the semi-supervised model's
    # a setting of another family, which the run's model never read, is no lever
    assert levers({"reconstruction_weight": 0.0, "seed": 1}) == "seed 1"
    assert levers({"model": "bigan", "reconstruction_weight": 0.0}) == "reconstruction_weight 0.0"


def test_a_value_that_is_what_auto_means_for_the_run_is_no_lever():
    """A run written out when the default was a number: 128 images a step is the seed's
    `auto`, not softmax's (64), and a loss's prescribed rate is no change for that loss."""
    from pipeline.reporting.ledger import levers

    assert levers({"batch_size": 128}) == "defaults"
    assert levers({"loss": "softmax", "batch_size": 64}) == "defaults"
    assert levers({"loss": "softmax", "batch_size": 128}) == "batch_size 128"
    assert levers({"loss": "wgan-gp", "learning_rate": 5e-4}) == "defaults"
    assert levers({"loss": "gan", "learning_rate": 5e-4}) == "learning_rate 0.0005"


def test_figures_name_the_machine():
    from pipeline.reporting.figures import machine_text

    machine = {"cpu": "AMD EPYC", "cores": 2, "features": ["avx2", "avx512_bf16"], "versions": {}}
    assert machine_text(machine) == " (a 2-core AMD EPYC with avx2, avx512_bf16)"
    assert machine_text({**machine, "features": []}).endswith("with none of AVX2, AVX-512, AMX)")
    capped = {**machine, "isa_cap": "AVX2"}
    assert machine_text(capped).endswith("with avx2, avx512_bf16, oneDNN capped at AVX2)")
    assert machine_text(None) == ""


def test_a_tables_cpu_cell_is_the_widest_instruction_set_its_kernels_use():
    from pipeline.reporting.figures import cpu_class

    amd = {"cpu": "AMD EPYC", "cores": 2, "features": ["avx2", "avx512f", "avx512_bf16"]}
    assert cpu_class(amd) == "AMD EPYC, AVX512_BF16"
    xeon = {**amd, "cpu": "Intel Xeon", "features": ["avx2", "avx512f", "amx_bf16"]}
    assert cpu_class(xeon) == "Intel Xeon, AMX"
    assert cpu_class({**amd, "features": ["avx2"]}) == "AMD EPYC, AVX2"
    assert cpu_class({**amd, "features": []}) == "AMD EPYC"
    assert cpu_class({"cpu": "AMD EPYC", "cores": 2}) == "AMD EPYC"  # as `dvc exp show` keeps it
    assert cpu_class({**amd, "isa_cap": "AVX2"}) == "AMD EPYC, capped at AVX2"
    assert cpu_class(None) == "-"


def test_a_runs_seed_is_its_own_or_its_levers():
    assert run_seed({"seed": 3, "levers": "defaults"}) == 3
    assert run_seed({"levers": "seed 1, epochs 10"}) == 1
    assert run_seed({"seed": None, "levers": "defaults"}) == 0


def test_every_committed_block_is_what_make_report_writes(committed_root):
    """A figure edited by hand in a generated block of README.md or docs/ fails here: every
    block is rendered again from the committed metrics and ledger and compared with its page.
    The metrics are HEAD's: a user's own `make run` rewrites them, not the docs."""
    for page, text in render(committed_root, read_ledger(committed_root)).items():
        assert (REPO / page).read_text() == text, f"{page} differs from `make report`'s"


def test_the_docs_are_held_to_the_committed_metrics_not_a_users_own_run(tmp_path):
    """A stage's output that git tracks is read from HEAD, whatever the working tree holds;
    every other file as the working tree has it."""
    repo = tmp_path / "repo"
    (repo / "metrics").mkdir(parents=True)
    (repo / "dvc.yaml").write_text(
        "stages:\n  evaluate:\n    cmd: x\n    metrics:\n      - metrics/evaluate.json:\n"
        "          cache: false\n"
    )
    (repo / "metrics/evaluate.json").write_text('{"fd": 1.5}')
    (repo / "README.md").write_text("committed")
    for args in (
        ["init", "-q"],
        ["add", "."],
        ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "c"],
    ):
        assert git(repo, *args).returncode == 0
    (repo / "metrics/evaluate.json").write_text('{"fd": 9.9}')  # a user's own run
    (repo / "README.md").write_text("edited")
    view = committed_view(tmp_path / "view", repo)
    assert (view / "metrics/evaluate.json").read_text() == '{"fd": 1.5}'
    assert (view / "README.md").read_text() == "edited"


def significant(text: str) -> int:
    """The significant digits of a printed number: `0.072` has 2, `2.193` has 4."""
    return len(text.rstrip("%").lstrip("-").replace(".", "").lstrip("0"))


def metric_figures(root: Path) -> set[str]:
    """Every fractional number of `root`'s metrics files as the docs would print it."""
    figures = set()

    def walk(value):
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, float) and not value.is_integer():
            printed = {f"{value:.{digits}f}" for digits in (2, 3, 4)} | {f"{100 * value:.2f}%"}
            figures.update(text for text in printed if significant(text) >= 3)

    for path in sorted((root / "metrics").glob("*.json")):
        walk(json.loads(path.read_text()))
    return figures


def headline_figures(root: Path) -> set[str]:
    """The default model's figures the README's Results show: what a page may only point to."""
    quality = json.loads((root / "metrics/evaluate.json").read_text())["generated"]
    accuracy = json.loads((root / "metrics/classifier.json").read_text())["test_accuracy"]
    values = [quality[key] for key in ("frechet_distance", "classifier_score", "recall")]
    figures = {f"{value:.{digits}f}" for value in values for digits in (2, 3)}
    return {text for text in figures if significant(text) >= 3} | {f"{100 * accuracy:.2f}%"}


def prose(text: str) -> str:
    """`text` without its generated blocks."""
    for name in BLOCKS:
        while start_mark(name) in text:
            head, rest = text.split(start_mark(name), 1)
            text = head + rest.split(end_mark(name), 1)[1]
    return text


@pytest.mark.parametrize(
    "page",
    [
        "README.md",
        *sorted(p.name for p in (REPO / "docs").glob("*.md") if p.name != "MODEL_CARD.md"),
    ],
)
def test_no_metric_figure_is_typed_outside_the_generated_blocks(page, committed_root):
    """README.md types no figure any metrics file holds; the docs pages type none of the
    README's headline figures (their tables of past experiments are the ledger's, whose
    figures can coincide with a metric's)."""
    import re

    path = REPO / page if page == "README.md" else REPO / "docs" / page
    # A figure, not a version floor such as "Python 3.10+".
    typed = set(re.findall(r"(?<![\w.])\d+\.\d{2,}%?(?![\w.+])", prose(path.read_text())))
    root = committed_root
    figures = metric_figures(root) if page == "README.md" else headline_figures(root)
    assert not typed & figures, f"{page}: write these figures with `make report`"


def test_an_experiment_whose_commit_has_no_curve_keeps_the_ledgers(tmp_path):
    """An experiment made with an older layout of the tracking tables: its commit has no
    dvclive tables, so the curve read when it was made stays."""
    old = {"name": "old-run", "rev": "0" * 40, "frechet_distance": 4.0}
    (tmp_path / LEDGER).parent.mkdir(parents=True)
    (tmp_path / LEDGER).write_text(json.dumps([{"name": "old-run", "curve": [[1.0, 9.0]]}]))
    assert merge_ledger(tmp_path, [old])[0]["curve"] == [[1.0, 9.0]]
    workspace = {"name": "old-run", "rev": None, "frechet_distance": 4.0}
    assert merge_ledger(tmp_path, [workspace])[0]["curve"] == []  # the workspace: as it is now


def test_the_spread_row_is_the_runs_mean_and_sample_deviation():
    """FD 1 and 3: mean 2, sample sd sqrt(2); a figure one run lacks (KID measured since) is
    `-`; the same family measure on both is spread too."""
    runs = [
        {
            "frechet_distance": fd,
            "kernel_distance": kid,
            "classifier_score": 9.0,
            "recall": 0.7,
            "smallest_class_share": 0.09,
            "train_seconds": seconds,
            "label_accuracy": accuracy,
            "model": "conditional",
        }
        for fd, kid, seconds, accuracy in ((1.0, None, 100.0, 0.99), (3.0, 0.5, 300.0, 0.995))
    ]
    assert spread_line("| conditional | gan | x |", runs) == (
        "| conditional | gan | x | mean ± sd | 2 runs | 2.000 ± 1.414 | - | 9.000 | 0.700 | "
        "0.090 | label accuracy 99.25% ± 0.35% | 200 ± 141 | |"
    )
