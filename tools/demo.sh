#!/usr/bin/env bash
# The main job (`make demo`): DiCENet-SSD300 on the embedded shapes detection set.
#   1. generate the synthetic shapes in COCO format (deterministic),
#   2. train configs/ssd/dicenet-s0.5_ssd300_shapes.py with tools/train.py,
#   3. evaluate the held-out split with tools/test.py (mmdet's COCO bbox table) and draw
#      the predictions (mmdet's DetLocalVisualizer) under WORK_DIR/test/<timestamp>/vis.
# Environment: PYTHON, WORK_DIR, DATA_ROOT, NUM_IMAGES (train + held-out), IMAGE_SIZE, and
# TRAIN_OPTIONS (extra --cfg-options of the training run, e.g. to shorten it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python}"
CONFIG=configs/ssd/dicenet-s0.5_ssd300_shapes.py
WORK_DIR="${WORK_DIR:-work_dirs/dicenet-s0.5_ssd300_shapes}"
DATA_ROOT="${DATA_ROOT:-data/shapes/detection}"
NUM_IMAGES="${NUM_IMAGES:-1600}"
IMAGE_SIZE="${IMAGE_SIZE:-128}"
read -r -a TRAIN_OPTIONS <<< "${TRAIN_OPTIONS:-}"
DATA_OPTIONS=(
  "train_dataloader.dataset.data_root=$DATA_ROOT"
  "val_dataloader.dataset.data_root=$DATA_ROOT"
  "test_dataloader.dataset.data_root=$DATA_ROOT"
  "val_evaluator.ann_file=$DATA_ROOT/annotations/val.json"
  "test_evaluator.ann_file=$DATA_ROOT/annotations/val.json"
)

echo "[demo] 1/3 shapes detection data -> $DATA_ROOT"
"$PYTHON" tools/dataset_converters/generate_shapes.py --task detection --out "$DATA_ROOT" \
  --num-images "$NUM_IMAGES" --image-size "$IMAGE_SIZE"
echo "[demo] 2/3 training $CONFIG -> $WORK_DIR"
"$PYTHON" tools/train.py "$CONFIG" --work-dir "$WORK_DIR" \
  --cfg-options "${DATA_OPTIONS[@]}" ${TRAIN_OPTIONS[@]+"${TRAIN_OPTIONS[@]}"}
CHECKPOINT="$(cat "$WORK_DIR/last_checkpoint")"
echo "[demo] 3/3 testing $CHECKPOINT on the held-out split"
"$PYTHON" tools/test.py "$CONFIG" "$CHECKPOINT" --work-dir "$WORK_DIR/test" --show-dir vis \
  --cfg-options "${DATA_OPTIONS[@]}"
echo "[demo] predictions drawn in $(ls -d "$WORK_DIR"/test/*/vis | tail -1)"
