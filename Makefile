# maskstream: `make demo` sets up and runs the main job; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
FIXTURES ?= ../shared/fixtures
DEMO_VIDEO ?= $(FIXTURES)/videos/udacity_solidWhiteRight.mp4
DEMO_MODEL ?= $(FIXTURES)/models/yolov8n-seg_int8.onnx

.PHONY: setup demo test bench lint clean

setup: $(VENV)/.installed

# torch==2.13.0 first: the CPU build (a plain `torch` requirement would pull a CUDA build)
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

demo: setup
	mkdir -p out
	$(VENV)/bin/maskstream run $(DEMO_VIDEO) --model $(DEMO_MODEL) --output out/demo.mp4 --jsonl out/demo.jsonl

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) tools/bench.py --model $(DEMO_MODEL) --video $(DEMO_VIDEO)

lint: setup
	$(VENV)/bin/ruff check pipeline engines tools tests
	$(VENV)/bin/mypy pipeline engines

clean:
	rm -rf $(VENV) out .pytest_cache
