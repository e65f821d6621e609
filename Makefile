# The README's commands. `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OUT ?= out

# Some machines (ours, and CI's) keep a CPU build of torch on disk. Installing it first stops pip
# from resolving `torch` to a multi-GB CUDA build; elsewhere pip installs torch as usual (set
# PIP_INDEX_URL/PIP_EXTRA_INDEX_URL to choose a CPU or CUDA build, as PyTorch documents).
TORCH_VERSION := 2.13.0
LOCAL_TORCH := $(firstword $(wildcard /opt/wheels/torch-$(TORCH_VERSION)+cpu-*.whl))

.PHONY: demo test test-fast lint typecheck docs browser bench gpu-wheelhouse gpu-check install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml
ifneq ($(LOCAL_TORCH),)
	$(BIN)/pip install -q "$(LOCAL_TORCH)"
endif
	$(BIN)/pip install -q -e ".[all]"
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install -q -e ".[test]"
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	@mkdir -p $(OUT)
	$(BIN)/impasto transfer examples/tubingen.jpg examples/starry_night.jpg \
		-o $(OUT)/demo_tubingen_starry_night.png --size 256 --iterations 150
	@echo "Done: open $(OUT)/demo_tubingen_starry_night.png"

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/lint-imports
	$(BIN)/python scripts/check_lengths.py src

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

# tests/test_browser.py drives Debian's Chromium (Playwright's own browser download cannot work
# here): install it when it is missing and we are root, as in CI; elsewhere the test says why it
# skips.
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else echo "chromium is missing (apt-get install chromium, as root): the browser test skips"; fi

# The manual into site/ (git-ignored), offline; --strict: a broken link or reference fails.
docs: $(VENV)/.installed-test
	$(BIN)/mkdocs build --strict --quiet

test: lint typecheck docs browser
	$(BIN)/python -m pytest -q

# The quick loop while working: the tests not marked slow (no real-weight runs in processes, no
# Ray, no browser). `make test` (what CI runs) is still the whole suite.
test-fast: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/bench_speed.py

# On a CUDA machine: every GPU claim in one run (BENCHMARKS.md, "GPU"). A machine that cannot reach
# PyPI needs the wheelhouse, built here first for its Python (e.g. PYVER=3.12).
gpu-wheelhouse: $(VENV)/.installed
	bash benchmarks/gpu_wheelhouse.sh $(or $(PYVER),3.12)

gpu-check:
	bash benchmarks/gpu_check.sh $(OUT)/gpu-check

clean:
	rm -rf $(VENV) $(OUT) site build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
