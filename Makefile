# ganfit — set-up and everyday commands. Every target installs what it needs first.
#   make fit        set up, then run the main job on the embedded default
#   make test       set up, then run the default (fast) test suite — this is what CI runs
#   make test-slow  the whole suite, slow tests included (CI: make test, then make test-slow-only)
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ganfit-installed
# numba compiles its kernels once per machine when it has a writable cache directory.
export NUMBA_CACHE_DIR ?= $(HOME)/.cache/ganfit/numba
PYTEST_ARGS ?=

.PHONY: browser install fit test test-slow test-slow-only lint assets bench bench-render bench-identity bench-landmarks bench-fit bench-gan eval-synthetic eval-photos default-generator clean

# The install step also puts @tensorflow/tfjs 4.22.0 (pure JS) into the git-ignored .cache/tfjs when npm exists: the
# TF.js reference of the identity parity tests (tests/test_identity_tfjs.py), which skip without it (fail on CI).
$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (ganfit needs Python 3.11; set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	if command -v npm >/dev/null; then npm install --prefix .cache/tfjs --no-audit --no-fund --silent @tensorflow/tfjs@4.22.0; \
	else echo "npm not found: skipping @tensorflow/tfjs (the TF.js parity tests will skip)"; fi
	@command -v chromium >/dev/null || $(MAKE) --no-print-directory browser || true
	touch $(STAMP)

install: $(STAMP)

# Headless Chromium for the browser tests of the HTML report and the demo (Debian's package; needs root and apt).
# Non-fatal: without it those tests skip locally (and fail with CI=true).
browser:
	@command -v chromium >/dev/null && exit 0; \
	if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1 \
			|| echo "note: could not install chromium (browser tests will skip)"; \
	else \
		echo "note: no chromium and no root apt-get: install Debian's chromium package for the browser tests"; \
	fi

# Downloads the ICT FaceKit model from its upstream repository if GANFIT_ASSETS does not hold it yet
# (the only step of ganfit that uses the network).
assets: install
	$(PY) -m ganfit.assets ensure

fit: assets
	$(PY) fit.py

test: install
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

test-slow: install
	$(PY) -m pytest $(PYTEST_ARGS)

# The slow tests alone (CI runs them after `make test`; ~4 min on 2 cores in session 5).
test-slow-only: install
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check src tests benchmarks

# Benchmarks print markdown tables of medians (speed targets live here, never in tests). They read GANFIT_ASSETS /
# GANFIT_PHOTOS like the tests. The GAN demo run and its SWD table are in docs/gan.md (need prepared crops).
bench: bench-render bench-identity bench-landmarks bench-gan bench-fit

bench-render: install
	$(PY) benchmarks/render.py

bench-identity: install
	$(PY) benchmarks/identity.py

bench-landmarks: install
	$(PY) benchmarks/landmarks.py

bench-gan: install
	$(PY) benchmarks/gan_throughput.py

bench-fit: install
	$(PY) benchmarks/fit.py

# Quality evaluations (minutes to hours on 2 cores; see docs/evaluation.md).
eval-synthetic: install
	$(PY) -m ganfit.eval.synthetic n=6 seed=0 out=outputs/eval/synthetic

eval-photos: install
	$(PY) -m ganfit.eval.photos frl_holdout=true out=outputs/eval/frl

# Rebuild the shipped generator data/generators/frl_uv64.pt from the FRL photos in GANFIT_PHOTOS (~1-1.5 h on 2 cores;
# docs/dataset.md has the measured step times). Overwrites the committed file and its card.
default-generator: assets
	bash scripts/build_default_generator.sh outputs/default-generator

clean:
	rm -rf $(VENV) outputs multirun .pytest_cache
