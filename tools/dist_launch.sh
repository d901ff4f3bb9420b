#!/usr/bin/env bash
# torchrun launcher of dist_train.sh and dist_test.sh:
#   tools/dist_launch.sh TOOL NUM_PROCESSES [TOOL's args...]
# TOOL: a script beside this one (train.py, test.py), run with the arguments as given. Multi-node: NNODES, NODE_RANK,
# MASTER_ADDR, PORT. PYTHON: the interpreter (default: the repository's .venv/bin/python
# when present, else python from PATH).
set -euo pipefail
TOOL=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python; fi
fi

PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" \
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$(dirname "$0")/$TOOL" \
    "${@:3}"
