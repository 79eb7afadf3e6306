# `make run` and `make test` work on a fresh clone: each creates .venv and installs on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
STAMP := $(VENV)/.installed

# Stage commands in dvc.yaml run the venv's `python -m pipeline`, so its bin must come first on PATH.
export PATH := $(BIN):$(PATH)
# DVC's usage analytics would try the network on every call.
export DVC_NO_ANALYTICS := 1

.PHONY: setup web-setup run test test-slow test-offline sample web report lint clean bench bench-train \
	bench-web bench-distribute exp sweep mutations mutmut test-isa probe

setup: $(STAMP)

# What the stages need (`make run`); the test and lint tools come on top (`setup`).
$(RUN_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[train]'
	touch $@

$(STAMP): $(RUN_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[train,dev]'
	touch $@

# The page's and the Node sampler's runtimes from the lock file (onnxruntime-node's install step
# only fetches CUDA binaries: skipped), and Debian's Chromium for the browser tests.
CHROMIUM := /usr/bin/chromium
web-setup: node_modules/.package-lock.json $(CHROMIUM)

node_modules/.package-lock.json: package.json package-lock.json
	ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund
	touch $@

$(CHROMIUM):
	$(if $(filter 0,$(shell id -u)),,sudo) sh -c 'apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium'

run: $(RUN_STAMP)
	dvc repro

# One test worker per core. Each takes a run of consecutive tests and an idle one takes over
# tests another has not begun (worksteal), so one module's long trainings do not finish the run
# on a single worker. TEST_WORKERS=0 runs them in this process.
TEST_WORKERS ?= auto
PARALLEL := -n $(TEST_WORKERS) --dist worksteal

test: setup web-setup
	pytest $(PARALLEL)

test-offline: setup
	pytest $(PARALLEL) -m 'not network and not slow'

# The tests whose results depend on how the kernels round (bit-identical reruns, export parity,
# replicas, batch norm, the precision choice), under each CPU class oneDNN can emulate here: the
# machine's own, then capped at AVX512_CORE_BF16, AVX512_CORE and AVX2 (docs/TESTING.md, CPU
# classes; about 10 minutes a class on 2 cores). A cap wider than the CPU changes nothing.
ISA_CAPS ?= ALL AVX512_CORE_BF16 AVX512_CORE AVX2
ISA_TESTS ?= tests/test_machine.py tests/test_placement.py tests/test_model.py tests/test_augment.py \
	tests/test_losses.py tests/test_averaging.py tests/test_inference.py tests/test_distribution.py \
	tests/test_export.py tests/test_reproducible_outputs.py tests/test_benchmark.py
test-isa: setup
	set -e; for cap in $(ISA_CAPS); do echo "== ONEDNN_MAX_CPU_ISA=$$cap"; \
		ONEDNN_MAX_CPU_ISA=$$cap pytest $(PARALLEL) -q $(ISA_TESTS); done

# The reliability drills repeated at more moments and over every variant (8-10 minutes).
test-slow: setup web-setup
	pytest -m slow

# The web page on http://127.0.0.1:8000/ (after `make run`): digits drawn in the browser.
PORT ?= 8000
web: setup node_modules/.package-lock.json
	dcgan serve --port $(PORT)

# Digits from the exported generator (after `make run`): `make sample N=16 SEED=3 OUT=x.png`;
# a conditional model draws one digit with LABEL=7.
MODEL ?= models/generator.onnx
N ?= 64
SEED ?= 0
OUT ?= samples.png
sample: setup
	dcgan sample --model $(MODEL) -n $(N) --seed $(SEED) --out $(OUT) $(if $(LABEL),--label $(LABEL))

# Speed, side by side in one run each (after `make run`): sampling (onnxruntime vs TensorFlow,
# float32 and int8/bf16), a stage of `dvc repro`, and the training loop against plain steps of
# the same networks, which no stage needs (metrics/train_benchmark.json, docs/PERFORMANCE.md).
BENCH_TRAIN := dcgan train-benchmark --classifier models/classifier.keras
bench: setup
	dvc repro --force --single-item benchmark

bench-train: setup
	$(BENCH_TRAIN)

# The generator in headless Chromium and Node beside native onnxruntime, the page's load time,
# its pixels against Python's, and the README's screenshot (after `make run`; about 2 min).
bench-web: setup web-setup
	dcgan web-benchmark --screenshot docs/images/web-page.png

# What tf.distribute adds to a training step: 2 logical CPU devices, 2 worker processes.
bench-distribute: setup
	dcgan distribute-benchmark

# A preset of presets/ as a DVC experiment named PRESET-seed-SEED (docs/EXPERIMENTS.md, Presets):
# `make exp PRESET=quality SEED=1`; `dcgan exp --help` for more.
PRESET ?= quality
exp: setup
	dcgan exp $(PRESET) --seed $(SEED)

# A grid of experiments through DVC's queue (README, Sweeps): every combination of SWEEP's
# values, queued, then run JOBS at a time until the queue is empty; `make report` lists them.
SWEEP ?= -S 'train.loss=gan,lsgan' -S 'train.seed=0,1'
JOBS ?= 1
sweep: setup
	dvc exp run --queue $(SWEEP)
	dvc exp run --run-all --jobs $(JOBS)

# Every generated block of README.md and docs/, and the model card, from metrics/*.json and
# `dvc exp show` (after `make run`).
report: setup
	dcgan report

# Break the code as docs/RELIABILITY.md says and check that its tests catch it (about 6 min).
mutations: setup
	python tools/mutations.py

# Hostile inputs and faults against every entry point, judged as a user sees them (about 1 min;
# needs `make run`'s models): a table of the cases and the totals.
probe: setup web-setup
	python tools/probe.py

# Every mutant mutmut makes of the modules that compute what a user sees ([tool.mutmut] in
# pyproject.toml), and each module's kill rate; docs/RELIABILITY.md explains each survivor.
# One module takes a minute or a few on 2 cores:
#   make mutmut MUTATE="pipeline.storage.files*"
MUTATE ?=
mutmut: setup
	mutmut run --max-children 2 $(MUTATE)
	python tools/mutmut_scores.py

lint: setup
	ruff check .
	ruff format --check .

clean:
	rm -rf .pytest_cache .ruff_cache samples.png
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +
