# Two commands on a fresh clone: `make demo` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# The CPU build of PyTorch, found locally; installing torch first keeps pip from pulling CUDA builds.
TORCH_SPEC ?= torch==2.13.0

.PHONY: demo test lint format browser install install-dev install-all bench bench-video bench-studio bench-atlas bench-batch quality test-kernels clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check "$(TORCH_SPEC)"
	$(PIP) install --quiet --disable-pip-version-check -e ".[demo]"
	touch $@

# timm and torchvision for the tests of networks by name (random weights), without their dependencies: from the
# package index they would bring a CUDA torch of their own. This torchvision is built for torch 2.13.
MODEL_LIBRARIES ?= torchvision==0.28.0 timm==1.0.31
$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) install --quiet --disable-pip-version-check -e ".[dev]"
	$(PIP) install --quiet --disable-pip-version-check --no-deps $(MODEL_LIBRARIES)
	touch $@

$(VENV)/.installed-all: $(VENV)/.installed
	$(PIP) install --quiet --disable-pip-version-check -e ".[all]"
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev
install-all: $(VENV)/.installed-all

demo: $(VENV)/.installed
	$(PY) -m dreamscope sample coffee coffee.png
	$(PY) -m dreamscope dream coffee.png -o dream.png
	@echo "every feature: make install-all, the extras [lite] (visualize --score), [studio], [atlas], [explain], [ray], [safetensors]"

# Two pytest workers, a test module each at a time: the suite waits a lot on subprocesses, imports and browsers,
# which a second worker fills (8-9 minutes instead of 10-11 on the 2-core machine).
TEST_WORKERS ?= 2
test: $(VENV)/.installed-dev browser lint
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile

# The tests that follow an optimization, on the portable kernels (no AVX, oneDNN at SSE4.1): another machine's
# rounding, so a margin that only this CPU's arithmetic passes shows up here. Slow (24 minutes here, 110 tests).
KERNEL_TESTS := tests/optvis tests/recipes/test_visualize.py tests/recipes/test_video.py tests/recipes/test_quality.py tests/recipes/test_zoom.py
test-kernels: $(VENV)/.installed-dev
	ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41 $(PY) -m pytest -q $(KERNEL_TESTS)

# The code as ruff's lint and formatter leave it (settings in pyproject.toml); `make format` fixes what they can.
LINTED := src tests docs benchmarks
lint: $(VENV)/.installed-dev
	$(PY) -m ruff check $(LINTED)
	$(PY) -m ruff format --check $(LINTED)

format: $(VENV)/.installed-dev
	$(PY) -m ruff check --fix $(LINTED)
	$(PY) -m ruff format $(LINTED)

# The probe report test renders the page in headless Chromium. Install Debian's package where we can (root
# or passwordless sudo, with apt); never fail: without a browser that one test skips and says why.
APT_CHROMIUM := env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { command -v apt-get >/dev/null 2>&1 && \
	    { $(APT_CHROMIUM) || { apt-get update -q >/dev/null 2>&1 && $(APT_CHROMIUM); } || sudo -n $(APT_CHROMIUM); } && \
	    echo "installed chromium (for the browser tests)"; } || \
	  echo "note: chromium is not installed and could not be installed here; the browser tests (probe report, studio) will skip"

bench: $(VENV)/.installed-dev
	$(PY) benchmarks/bench_dream.py

bench-video: $(VENV)/.installed-dev
	$(PY) benchmarks/bench_video.py

bench-studio: $(VENV)/.installed-dev
	$(PY) benchmarks/bench_studio.py

bench-atlas: $(VENV)/.installed-dev
	$(PY) benchmarks/bench_atlas.py --json docs/bench_atlas.json

bench-batch: $(VENV)/.installed-dev
	$(PY) benchmarks/bench_batch.py --json docs/bench_batch.json

quality: $(VENV)/.installed-dev
	$(PY) benchmarks/quality_visualize.py

clean:
	rm -rf $(VENV) coffee.png dream.png .pytest_cache
