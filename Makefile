# Two commands: `make demo` and `make test`. Everything else is what they need.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# The CPU build of PyTorch; a torch >= 2.2 already in the venv (e.g. a CUDA build) is kept.
TORCH_PIN := torch==2.13.0

.PHONY: demo test bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.torch: | $(PY)
	$(PY) -c "import sys, torch; v = tuple(int(p) for p in torch.__version__.split('+')[0].split('.')[:2]); sys.exit(v < (2, 2))" 2>/dev/null \
	  || $(PIP) install "$(TORCH_PIN)"
	# Every later install is held to the torch now in the venv: nothing may swap it for a CUDA build.
	$(PY) -c "import torch; print('torch==' + torch.__version__)" > $(VENV)/constraints.txt
	touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/.torch
	$(PIP) install -c $(VENV)/constraints.txt -e ".[test]"
	# curvlinops (benchmark reference only) depends on BackPACK, which asks for torchvision and so a
	# different torch; install them without dependencies, their own pure-Python needs by name.
	$(PIP) install -c $(VENV)/constraints.txt einops opt-einsum
	$(PIP) install -c $(VENV)/constraints.txt --no-deps curvlinops-for-pytorch==3.0.1 \
	  backpack-for-pytorch unfoldNd einconv linear_operator
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/sgdnoise demo --out results/demo

test: $(VENV)/.installed
	$(PY) -m pytest -n 2 --durations=15

bench: $(VENV)/.installed
	$(PY) benchmarks/simulator.py
	$(PY) benchmarks/theory.py --epoch
	$(PY) benchmarks/curvature.py
	$(PY) benchmarks/threads.py
	$(PY) benchmarks/sweep.py

clean:
	rm -rf $(VENV) results .pytest_cache
