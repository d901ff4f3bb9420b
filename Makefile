# Two entry points for a fresh machine: `make test` and `make demo`.
# Both create .venv with the pinned stack on first use and are fast afterwards.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: env test demo bench clean

env:
	bash tools/install_env.sh

test: env
	$(PY) -m pytest tests $(PYTEST_ARGS)

demo: env
	PYTHON=$(PY) bash tools/demo.sh

bench: env
	$(PY) benchmarks/bench_dim_conv.py --batch 1 32

clean:
	rm -rf build mmdice/_ext*.so
