# streamact: `make demo` runs the live demos (gestures, then detection), `make test` runs the tests,
# `make bench` measures streaming speed and updates docs/RESULTS.md. All create .venv if missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test venv clean bench

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch/torchvision pinned to the releases available on this machine's disk (no multi-GB download).
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/streamact demo --out runs/demo
	$(BIN)/streamact demo --task detection --out runs/demo_detection

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup tests  # loadgroup: tests/cluster share one Ray cluster

bench: $(STAMP)
	$(BIN)/streamact bench --task streaming --update-docs

clean:
	rm -rf runs build *.egg-info
