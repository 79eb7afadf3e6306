# `make run` and `make test` work on a fresh clone: each creates .venv and installs on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed

# Stage commands in dvc.yaml call `dcgan`, so the venv's bin must come first on PATH.
export PATH := $(BIN):$(PATH)
# DVC's usage analytics would try the network on every call.
export DVC_NO_ANALYTICS := 1

.PHONY: setup run test test-offline sample report lint clean bench bench-train mutations mutmut

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[train,dev]'
	touch $@

run: setup
	dvc repro

test: setup
	pytest

test-offline: setup
	pytest -m 'not network'

# Digits from the exported generator (after `make run`): `make sample N=16 SEED=3 OUT=x.png`;
# a conditional model draws one digit with LABEL=7.
MODEL ?= models/generator.onnx
N ?= 64
SEED ?= 0
OUT ?= samples.png
sample: setup
	dcgan sample --model $(MODEL) -n $(N) --seed $(SEED) --out $(OUT) $(if $(LABEL),--label $(LABEL))

# Speed, side by side in one run each (after `make run`, or they run the stages they need):
# sampling (onnxruntime vs TensorFlow, float32 and int8/bf16) and the training step.
bench: setup
	dvc repro --force --single-item benchmark

bench-train: setup
	dvc repro --force --single-item train_benchmark

# The README's results section, from metrics/*.json and `dvc exp show` (after `make run`).
report: setup
	dcgan report --readme README.md

# Break the code as docs/RELIABILITY.md says and check that its tests catch it (about 6 min).
mutations: setup
	python tools/mutations.py

# Every mutant mutmut makes of the losses and the quality measures ([tool.mutmut] in
# pyproject.toml); the survivors and why each is harmless are listed in docs/RELIABILITY.md.
mutmut: setup
	mutmut run --max-children 2
	mutmut results

lint: setup
	ruff check .
	ruff format --check .

clean:
	rm -rf .pytest_cache .ruff_cache samples.png
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +
