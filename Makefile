# Two entry points for a fresh machine: `make test` and `make demo`.
# Both create .venv with the pinned stack on first use and are fast afterwards.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: env test demo bench clean dice-unit-shapes

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

# DiCE unit vs separable convolutions, side by side on the shapes set (configs/dice_unit/README.md)
DICE_UNIT_SHAPES_CONFIGS := $(addprefix configs/dice_unit/,\
	mobilenet_dwise-pw_41m_8xb64_in1k.py mobilenet_dimconv-dimfuse_29m_8xb64_in1k.py \
	resnet_pw-dwise-pw_59m_8xb64_in1k.py resnet_pw-dimconv-dimfuse_52m_8xb64_in1k.py \
	shufflenetv2_pw-dwise-pw_41m_8xb64_in1k.py shufflenetv2_pw-dimconv-dimfuse_46m_8xb64_in1k.py \
	shufflenetv2_pw-dwise-pw_146m_8xb64_in1k.py shufflenetv2_pw-dwise-se_140m_8xb64_in1k.py \
	shufflenetv2_pw-dwise-pwse_146m_8xb64_in1k.py shufflenetv2_pw-dwise-dimfuse_139m_8xb64_in1k.py \
	shufflenetv2_pw-dimconv-pw_135m_8xb64_in1k.py shufflenetv2_pw-dimconv-se_138m_8xb64_in1k.py \
	shufflenetv2_pw-dimconv-pwse_135m_8xb64_in1k.py shufflenetv2_pw-dimconv-dimfuse_122m_8xb64_in1k.py)

dice-unit-shapes: env
	OMP_NUM_THREADS=1 $(PY) tools/analysis_tools/shapes_comparison.py $(DICE_UNIT_SHAPES_CONFIGS) \
		--epochs 6 --num-images 1200 --data-root data/shapes/classification-1200 \
		--work-dir work_dirs/dice_unit_shapes --out work_dirs/dice_unit_shapes/table.md
