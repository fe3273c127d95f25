#!/bin/sh
# Fine-tune the default checkpoint on scenes made of real photographs (dataset/real.py), the
# whole MattingRefine at once (base network and refiner together: fine-tuning the base alone
# leaves the refiner reading features it was not trained on).
#
#   python -m dataset.prepare                    # once: the photographs (about 215 MB download)
#   SECONDS_BUDGET=3600 sh tools/train_real.sh   # train for an hour; re-run to continue (--resume)
#   python -m utils.convert_weights checkpoint/real-refine/<latest> weights.pdparams --precise-bn 100
#   # or the mean weights of the run's last checkpoints (utils/training/averaging.py):
#   python -m utils.convert_weights checkpoint/real-refine/epoch-*-step-*.pdparams weights.pdparams --precise-bn 100
#   # or that mean moved half-way back to the weights the run started from (--blend):
#   python -m utils.convert_weights checkpoint/real-refine/epoch-*-step-*.pdparams weights.pdparams --precise-bn 100 \
#       --blend start.pdparams
#
# PROCS data-parallel CPU processes (python -m paddle.distributed.launch, default 2: one per
# core: 1.7 times the steps per second of one process on a 2-core machine); the batch of 4 is
# split between them). The budget is train.py --max-seconds: every process stops at the same
# step and a checkpoint is saved. A single process (PROCS=1) also stops cleanly on
# `kill -TERM <pid of train.py>`; an interrupted multi-process run loses at most the steps since
# the last checkpoint (every 50 steps).
set -u
cd "$(dirname "$0")/.." || exit 1
SECONDS_BUDGET=${SECONDS_BUDGET:-3600}
NAME=${NAME:-real-refine}
FROM=${FROM:-weights/bgmv2_mobilenetv2_synthetic.pdparams}
LR_SCALE=${LR_SCALE:-4}
# light: the plate differs from the background behind the subject only by what a fixed camera
# gives (see dataset.augmentation.PLATE_CHANGES); official: the official, much larger changes;
# locked: a tripod camera with locked exposure and little sensor noise.
PLATE=${PLATE:-light}
# train.py --shadow-prob: how often a sample's background gets a cast shadow (empty: train.py's
# default, the official rate).
SHADOW=${SHADOW:-}
# Scenes are a function of (seed, epoch, index): a run that starts from another run's weights
# sees new scenes only with another seed.
SEED=${SEED:-0}
# The base network sees SAMPLE_SIZE x BACKBONE_SCALE pixels; 0.25 is the scale the model runs at
# on HD input, so the refiner is trained on the coarse output it gets there.
BACKBONE_SCALE=${BACKBONE_SCALE:-0.5}
# train.py --loss-unknown-weight: extra weight on the alpha error in the unknown region.
UNKNOWN_WEIGHT=${UNKNOWN_WEIGHT:-0}
# train.py --loss-foreground-weight: extra weight on the alpha error in the definite foreground.
FOREGROUND_WEIGHT=${FOREGROUND_WEIGHT:-0}
# train.py --loss-error-weight: extra weight on the error prediction, which chooses the refined patches.
ERROR_WEIGHT=${ERROR_WEIGHT:-0}
# train.py --real-kinds: the training scenes' foreground mix, e.g. translucent=0.25 (empty: default mix).
KINDS=${KINDS:-}
SAMPLE_SIZE=${SAMPLE_SIZE:-384}
# train.py --max-steps: stop at this step (counted from the run's start) with a checkpoint; 0: no limit.
MAX_STEPS=${MAX_STEPS:-0}
# train.py --keep-checkpoints: the newest KEEP mid-epoch checkpoints (every 50 steps, about 60 MB
# each) stay, so that the end of the run can be averaged.
KEEP=${KEEP:-24}
CROP_MIN=$((SAMPLE_SIZE * 2 / 3 / 4 * 4))

PROCS=${PROCS:-2}
if [ "$PROCS" -gt 1 ]; then
    set -- python -m paddle.distributed.launch --log_dir "log/launch/$NAME" --nproc_per_node "$PROCS"
else
    set -- python
fi

"$@" train.py --stage refine \
    --dataset-name real --model-backbone mobilenetv2 --device cpu --seed "$SEED" --resume \
    --model-name "$NAME" --model-last-checkpoint "$FROM" --lr-scale "$LR_SCALE" \
    --extra-augmentation --plate-change "$PLATE" ${SHADOW:+--shadow-prob "$SHADOW"} --loss-unknown-weight "$UNKNOWN_WEIGHT" \
    --loss-foreground-weight "$FOREGROUND_WEIGHT" --loss-error-weight "$ERROR_WEIGHT" --real-kinds "$KINDS" \
    --num-workers 1 --no-progress --epoch-end 1000 \
    --batch-size 4 --sample-size "$SAMPLE_SIZE" --crop-size "$CROP_MIN" "$SAMPLE_SIZE" --synthetic-length 2000 --valid-samples 16 \
    --model-backbone-scale "$BACKBONE_SCALE" --model-refine-mode sampling --model-refine-sample-pixels 20000 \
    --log-train-loss-interval 10 --log-train-images-interval 200 --log-valid-interval 100 \
    --checkpoint-interval 50 --keep-checkpoints "$KEEP" --max-seconds "$SECONDS_BUDGET" --max-steps "$MAX_STEPS"
status=$?
[ "$status" -eq 0 ] || [ "$status" -eq 143 ] || { echo "training failed ($status)" >&2; exit $status; }
echo "latest: checkpoint/$NAME/$(cat checkpoint/$NAME/latest)"
