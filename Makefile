# make demo: the whole demo study.  make test: the test suite.  Both set up .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
STUDY  ?= results/demo

.PHONY: demo test test-fast lint lab venv system-deps mutants

venv: $(STAMP) system-deps

# torch 2.14.1 with torchaudio 2.11.0: a pair known to work together (torchaudio's resample, lfilter); the
# library itself asks for torch>=2.4 (pyproject.toml). Reinstalls only when pyproject.toml changes. uv installs
# what pip would (the same resolution, pip's constraint file honoured where there is one) in a third of pip's time,
# and compiles every module as it installs: left to the first import, an environment with PYTHONDONTWRITEBYTECODE=1
# would compile torch and transformers again in every process (an import 4 s -> 10 s). Where uv cannot reach the
# index, pip does the same.
REQUIREMENTS := torch==2.14.1 torchaudio==2.11.0 -e '.[dev,ray]'
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q uv || echo "uv could not be installed: pip installs everything"
	constraints=$$($(BIN)/python -m pip config list | sed -n "s/^global.constraint='\(.*\)'$$/\1/p"); \
	$(BIN)/uv pip install -q --python $(BIN)/python --compile-bytecode $${constraints:+-c $$constraints} \
	  $(REQUIREMENTS) || $(BIN)/python -m pip install -q $(REQUIREMENTS)
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

# espeak-ng synthesises the demo corpus (every target); chromium drives the browser tests (make test only).
SYSTEM_DEPS ?= espeak-ng
test: SYSTEM_DEPS = espeak-ng chromium
system-deps:
	@missing=""; \
	for tool in $(SYSTEM_DEPS); do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing$$missing with apt-get"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing system packages:$$missing. Install them (apt-get install$$missing, or conda env create -f environment.yml)"; exit 1; \
	  fi; \
	fi

demo: venv
	$(BIN)/mlkd study --preset demo --out $(STUDY) --jobs 2
	@echo "Tables, plots and executed notebooks: $(STUDY)/  (open $(STUDY)/README.md)"

# JupyterLab at the project root, on this machine only (127.0.0.1); open the URL with the token it prints
lab: venv
	$(BIN)/jupyter lab --no-browser --ServerApp.ip=127.0.0.1 --ServerApp.root_dir=$(CURDIR) \
	  $$([ "$$(id -u)" = 0 ] && echo --allow-root)

# both tiers: tests/unit (seconds) and tests/integration (the real notebooks, JupyterLab, Voila, Ray: minutes),
# each on two workers; the integration tier in the two groups tests/conftest.py names (its studies wait on
# kernels, Ray and browsers: one process left a core idle much of the time)
test: test-fast
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2 --dist loadscope tests/integration

# the unit tier alone, while iterating: one pytest worker a core (pytest-xdist), one thread each (two workers of
# two torch threads each on two cores took a quarter longer; the integration tier's studies take one core each too)
test-fast: venv
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2 tests/unit

# mutation testing (mutmut) of the modules that compute the study's numbers against the unit tests that pin them;
# not part of `make test` (tests/README.md says how long it takes). MODULES="mlkd_lib/data/vad.py ...": only those.
# Scores in test-artifacts/mutants/scores.csv, the surviving mutants' diffs in test-artifacts/mutants/survivors.md.
mutants: venv
	$(BIN)/python tests/mutants.py $(MODULES)

# the library, its notebooks (mlkd_lib/notebooks: ruff reads .ipynb) and the tests
lint: venv
	$(BIN)/ruff check mlkd_lib tests
