# maskstream: `make demo` sets up and runs the main job; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
FIXTURES ?= ../shared/fixtures
DEMO_MODEL ?= engines/models/demo-seg.onnx
DEMO_SEED  ?= 3
DEMO_VIDEO ?= out/scenes/scene_$(DEMO_SEED).mp4
BENCH_MODEL ?= $(FIXTURES)/models/yolov8n-seg_int8.onnx
BENCH_VIDEO ?= $(FIXTURES)/videos/udacity_solidWhiteRight.mp4

.PHONY: setup demo evaluate test bench lint clean

setup: $(VENV)/.installed

# torch==2.13.0 first: the CPU build (a plain `torch` requirement would pull a CUDA build);
# TensorRT's type stubs last, in $(VENV)/typings for mypy (tools/trt_stubs.py says why).
# onnx2torch (the torch backend) with --no-deps: its metadata requires torchvision, whose
# PyPI wheel pins a CUDA torch; maskstream runs onnx2torch without it (see
# engines/pytorch/onnx2torch_import.py), so it is installed on its own and not listed in
# pyproject.toml, where pip would resolve that requirement.
$(VENV)/.installed: pyproject.toml tools/trt_stubs.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev,torch,archive,ray,mqtt]'
	$(PY) -m pip install -q --disable-pip-version-check --no-deps onnx2torch==1.5.15
	$(PY) tools/trt_stubs.py $(VENV)/typings
	touch $@

# the bundled demo model on a generated dashcam clip (made once, then reused)
demo: setup $(DEMO_VIDEO)
	$(VENV)/bin/maskstream run $(DEMO_VIDEO) --config configs/demo.yaml --model $(DEMO_MODEL) --output out/demo.mp4 --jsonl out/demo.jsonl
	@echo "demo: video out/demo.mp4, metadata out/demo.jsonl, ground truth $(basename $(DEMO_VIDEO)).coco.json"

$(DEMO_VIDEO): tools/make_scenes.py | setup
	$(PY) -m tools.make_scenes --seed $(DEMO_SEED) --frames 250 --out $(dir $@)

# demo-model accuracy on the demo clip (mask mAP, MOTA/IDF1 through the whole pipeline)
evaluate: setup $(DEMO_VIDEO)
	$(PY) -m tools.evaluate --model $(DEMO_MODEL) --config configs/demo.yaml --scene $(basename $(DEMO_VIDEO))

# NVIDIA Model Optimizer, for the tests of the TensorRT FP16/INT8 recipes (they run on the
# CPU). Its [onnx] extra would swap onnxruntime for onnxruntime-gpu and pull cupy, so only
# the modules that path imports are installed, pinned, without their dependencies.
MODELOPT := nvidia-modelopt==0.47.0 onnx-graphsurgeon==0.6.1 onnx-ir==1.1.0 onnxscript==0.7.2 \
	onnxslim==0.1.98 polygraphy==0.53.6 lief==1.0.0 nvidia-ml-py==13.615.71
$(VENV)/.modelopt: $(VENV)/.installed
	$(PY) -m pip install -q --disable-pip-version-check --no-deps $(MODELOPT)
	touch $@

test: setup $(VENV)/.modelopt
	$(PY) -m pytest -q

bench: setup
	$(PY) -m tools.bench --model $(BENCH_MODEL) --video $(BENCH_VIDEO)

lint: setup
	$(VENV)/bin/ruff check pipeline engines tools tests
	$(VENV)/bin/mypy pipeline engines

clean:
	rm -rf $(VENV) out .pytest_cache
