# Two commands on a fresh clone: `make demo` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# The CPU build of PyTorch, found locally; installing torch first keeps pip from pulling CUDA builds.
TORCH_SPEC ?= torch==2.13.0

.PHONY: demo test install install-dev bench quality clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check "$(TORCH_SPEC)"
	$(PIP) install --quiet --disable-pip-version-check -e ".[demo]"
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) install --quiet --disable-pip-version-check -e ".[dev]"
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: $(VENV)/.installed
	$(PY) -m dreamscope sample coffee coffee.png
	$(PY) -m dreamscope dream coffee.png -o dream.png
	@echo "wrote dream.png (dreamed from coffee.png)"

test: $(VENV)/.installed-dev
	$(PY) -m pytest -q

bench: $(VENV)/.installed-dev
	$(PY) benchmarks/bench_dream.py

quality: $(VENV)/.installed-dev
	$(PY) benchmarks/quality_visualize.py

clean:
	rm -rf $(VENV) coffee.png dream.png .pytest_cache
