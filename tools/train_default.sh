#!/bin/sh
# How the default checkpoint (weights/bgmv2_mobilenetv2_synthetic.pdparams) was trained: the
# project's own train.py on procedural data only (no download), MobileNetV2, CPU, from scratch.
# Each stage runs for a fixed wall-clock budget: `timeout` sends SIGTERM to train.py (only to it:
# --foreground, so its DataLoader worker is not signalled too), on which train.py saves a
# checkpoint and exits (status 143); stage 2 starts from stage 1's last checkpoint.
# Re-running continues both stages (--resume) for another budget each.
#
#   STAGE1_SECONDS=3300 STAGE2_SECONDS=2100 sh tools/train_default.sh
#   python -m utils.convert_weights checkpoint/default-stage2-refine/<latest> weights.pdparams
set -u
cd "$(dirname "$0")/.." || exit 1
STAGE1_SECONDS=${STAGE1_SECONDS:-3300}
STAGE2_SECONDS=${STAGE2_SECONDS:-2100}
PREFIX=${PREFIX:-default}
# what stage 2 starts from (a folder: its latest checkpoint; or one checkpoint file)
STAGE2_FROM=${STAGE2_FROM:-checkpoint/$PREFIX-stage1-base}
COMMON="--dataset-name synthetic --model-backbone mobilenetv2 --device cpu --seed 0 --resume
        --extra-augmentation --num-workers 1 --no-progress --epoch-end 1000 --lr-scale 2"

# finished, or stopped by the budget (train.py saves on SIGTERM and exits 128 + 15)
ok() { [ "$1" -eq 0 ] || [ "$1" -eq 143 ]; }

# STAGE1_SECONDS=0 skips stage 1 (e.g. to give stage 2 another budget).
status=0
if [ "$STAGE1_SECONDS" -gt 0 ]; then
  timeout --foreground --preserve-status -s TERM "$STAGE1_SECONDS" python train.py $COMMON --stage base --model-name "$PREFIX-stage1-base" \
    --batch-size 6 --sample-size 224 --crop-size 128 192 --synthetic-length 4000 --valid-samples 16 \
    --log-train-loss-interval 20 --log-train-images-interval 500 --log-valid-interval 500 \
    --checkpoint-interval 250 --keep-checkpoints 2 || status=$?
fi
ok $status || { echo "stage 1 failed ($status)" >&2; exit $status; }

timeout --foreground --preserve-status -s TERM "$STAGE2_SECONDS" python train.py $COMMON --stage refine --model-name "$PREFIX-stage2-refine" \
    --model-last-checkpoint "$STAGE2_FROM" \
    --batch-size 2 --sample-size 768 --crop-size 512 768 --synthetic-length 2000 --valid-samples 8 \
    --model-backbone-scale 0.25 --model-refine-mode sampling --model-refine-sample-pixels 80000 \
    --log-train-loss-interval 10 --log-train-images-interval 200 --log-valid-interval 200 \
    --checkpoint-interval 100 --keep-checkpoints 2
status=$?; ok $status || { echo "stage 2 failed ($status)" >&2; exit $status; }
echo "done: checkpoint/$PREFIX-stage2-refine/$(cat checkpoint/$PREFIX-stage2-refine/latest)"
