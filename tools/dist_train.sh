#!/usr/bin/env bash
# Distributed training with torchrun: tools/dist_train.sh CONFIG NUM_PROCESSES [train.py args...]
# Environment (NNODES, NODE_RANK, MASTER_ADDR, PORT, PYTHON): see dist_launch.sh.
set -euo pipefail
CONFIG=$1
GPUS=$2
exec bash "$(dirname "$0")/dist_launch.sh" train.py "$GPUS" "$CONFIG" --launcher pytorch "${@:3}"
