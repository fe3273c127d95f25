#!/bin/sh
# Train BackgroundMattingV2 in the paper's three stages, each one starting from the previous
# stage's last checkpoint:
#
#   stage 1  MattingBase   on VideoMatte240K                      (official train_base.py)
#   stage 2  MattingRefine on VideoMatte240K                      (official train_refine.py)
#   stage 3  MattingRefine on PhotoMatte13K, then Distinctions-646 (train_refine.py, one data set after the other)
#
# Usage:
#   sh run.sh                        # the paper's schedule on the real data sets (see dataset/data_path.py)
#   DATASET=synthetic sh run.sh      # the same chain on procedural data at small sizes: minutes on a CPU
#   BACKBONE=mobilenetv2 STAGE1_EPOCHS=4 sh run.sh   # any setting below can be set from the environment
#
# Re-running continues an interrupted chain: every stage runs with --resume, and a finished stage
# only reports that it has nothing left to do. A failing stage or a missing data folder stops the
# chain with a message saying which; the exit status is that of the failing command.

# ------------------------------------------------------------------------------------------------
# Settings (environment variables win over these defaults)
# ------------------------------------------------------------------------------------------------
DATASET=${DATASET:-paper}            # paper: the real data sets; synthetic: procedural data, small sizes
PYTHON=${PYTHON:-python}
DATA_ROOT=${DATA_ROOT:-data}         # folder the relative DATA_PATH entries are under
DATA_CONFIG=${DATA_CONFIG:-}         # optional JSON overriding DATA_PATH entries (see dataset/data_path.py)
START_PTH=${START_PTH:-}             # optional official checkpoint (.pth) or .pdparams to start stage 1 from
PRETRAIN_INIT=${PRETRAIN_INIT:-}     # optional DeepLabV3 weights for stage 1 (--model-pretrain-initialization)
CHECKPOINT_DIR=${CHECKPOINT_DIR:-checkpoint}
LOG_DIR=${LOG_DIR:-log}
NAME_PREFIX=${NAME_PREFIX:-}         # prepended to every model name (checkpoint/ and log/ folders)
EXTRA_ARGS=${EXTRA_ARGS:-}           # added to every train.py call, e.g. "--num-workers 8"

case "$DATASET" in
paper)
    # The official scripts' settings: base on 512 px samples with 256-512 px crops (batch 8),
    # refine on 2048 px samples with 1024-2048 px crops (batch 4). Epochs of stages 1-2 are
    # those of the official examples; the stage 3 fine-tuning length is not given by the
    # official code: set it to your schedule.
    : "${BACKBONE:=resnet50}"
    : "${DEVICE:=}"                  # empty: gpu if Paddle sees one, else cpu
    : "${STAGE1_DATA:=videomatte240k}"
    : "${STAGE1_EPOCHS:=8}"
    : "${STAGE1_ARGS:=}"
    : "${STAGE2_DATA:=videomatte240k}"
    : "${STAGE2_EPOCHS:=1}"
    : "${STAGE2_ARGS:=}"
    : "${STAGE3_DATA:=photomatte13k distinction}"
    : "${STAGE3_EPOCHS:=10}"
    : "${STAGE3_ARGS:=}"
    ;;
synthetic)
    # Procedural data (no download), MobileNetV2, CPU, small images and few steps: the whole
    # chain trains in a few minutes and shows the losses falling. The refine stages use
    # backbone scale 0.5 so that their backbone sees images of the size stage 1 trained on
    # (64-96 px), as the paper's 0.25 x 1024-2048 px matches its 256-512 px base crops.
    # Stage 3 fine-tunes on new scenes (seed 1).
    : "${BACKBONE:=mobilenetv2}"
    : "${DEVICE:=cpu}"
    : "${STAGE1_DATA:=synthetic}"
    : "${STAGE1_EPOCHS:=4}"
    : "${STAGE1_ARGS:=--batch-size 4 --sample-size 128 --crop-size 64 128 --synthetic-length 64 --valid-samples 8 --num-workers 1 --log-train-loss-interval 4 --log-valid-interval 16 --log-train-images-interval 32 --checkpoint-interval 32}"
    : "${STAGE2_DATA:=synthetic}"
    : "${STAGE2_EPOCHS:=3}"
    : "${STAGE2_ARGS:=--batch-size 2 --sample-size 192 --crop-size 128 192 --model-backbone-scale 0.5 --model-refine-sample-pixels 20000 --synthetic-length 32 --valid-samples 8 --num-workers 1 --log-train-loss-interval 4 --log-valid-interval 16 --log-train-images-interval 24 --checkpoint-interval 24}"
    : "${STAGE3_DATA:=synthetic}"
    : "${STAGE3_EPOCHS:=2}"
    : "${STAGE3_ARGS:=--seed 1 --batch-size 2 --sample-size 192 --crop-size 128 192 --model-backbone-scale 0.5 --model-refine-sample-pixels 20000 --synthetic-length 32 --valid-samples 8 --num-workers 1 --log-train-loss-interval 4 --log-valid-interval 16 --log-train-images-interval 16 --checkpoint-interval 16}"
    ;;
*)
    echo "run.sh: DATASET must be 'paper' or 'synthetic', got '$DATASET'" >&2
    exit 2
    ;;
esac

# ------------------------------------------------------------------------------------------------
set -u
cd "$(dirname "$0")" || exit 1

die() {
    echo "run.sh: $1" >&2
    exit "${2:-1}"
}

COMMON="--model-backbone $BACKBONE --checkpoint-dir $CHECKPOINT_DIR --log-dir $LOG_DIR --data-root $DATA_ROOT"
[ -n "$DEVICE" ] && COMMON="$COMMON --device $DEVICE"
[ -n "$DATA_CONFIG" ] && COMMON="$COMMON --data-config $DATA_CONFIG"

# Check every data set of the chain first: a missing folder should not surface after days of stage 1.
DATA_CHECK="--data-root $DATA_ROOT"
[ -n "$DATA_CONFIG" ] && DATA_CHECK="$DATA_CHECK --data-config $DATA_CONFIG"
# shellcheck disable=SC2086  # word splitting of the option strings is intended
$PYTHON -m dataset.batches $DATA_CHECK $STAGE1_DATA $STAGE2_DATA $STAGE3_DATA ||
    die "a data set of the chain is missing (see above); fix DATA_ROOT / DATA_CONFIG or the folders, or try DATASET=synthetic" 2

# run_stage LABEL MODEL_NAME train.py-arguments...: train one stage, stop the chain if it fails.
run_stage() {
    label=$1
    name=$2
    shift 2
    echo "==> $label: $name"
    # shellcheck disable=SC2086
    $PYTHON train.py --model-name "$name" --resume $COMMON "$@" $EXTRA_ARGS
    status=$?
    [ "$status" -eq 0 ] || die "$label ($name) failed with exit status $status; fix the cause above and re-run run.sh to continue where it stopped" "$status"
    [ -f "$CHECKPOINT_DIR/$name/latest" ] || die "$label ($name) wrote no checkpoint to $CHECKPOINT_DIR/$name" 1
}

started=$(date +%s)

# Optional starting weights for stage 1: an official .pth is converted once to .pdparams.
START_ARGS=""
if [ -n "$START_PTH" ]; then
    [ -f "$START_PTH" ] || die "START_PTH=$START_PTH: no such file" 2
    case "$START_PTH" in
    *.pdparams) start_weights=$START_PTH ;;
    *)
        start_weights="$CHECKPOINT_DIR/${NAME_PREFIX}start/$(basename "$START_PTH" | sed 's/\.[^.]*$//').pdparams"
        if [ ! -f "$start_weights" ]; then
            echo "==> converting $START_PTH -> $start_weights"
            mkdir -p "$(dirname "$start_weights")"
            $PYTHON -m utils.convert_weights "$START_PTH" "$start_weights" || die "could not convert $START_PTH" 2
        fi
        ;;
    esac
    START_ARGS="--model-last-checkpoint $start_weights"
elif [ -n "$PRETRAIN_INIT" ]; then
    START_ARGS="--model-pretrain-initialization $PRETRAIN_INIT"
fi

stage1="${NAME_PREFIX}stage1-mattingbase-$BACKBONE-$STAGE1_DATA"
# shellcheck disable=SC2086
run_stage "stage 1 (MattingBase on $STAGE1_DATA)" "$stage1" --stage base --dataset-name "$STAGE1_DATA" \
    --epoch-end "$STAGE1_EPOCHS" $START_ARGS $STAGE1_ARGS
previous=$stage1
logs="$LOG_DIR/$stage1"

stage2="${NAME_PREFIX}stage2-mattingrefine-$BACKBONE-$STAGE2_DATA"
# shellcheck disable=SC2086
run_stage "stage 2 (MattingRefine on $STAGE2_DATA)" "$stage2" --stage refine --dataset-name "$STAGE2_DATA" \
    --epoch-end "$STAGE2_EPOCHS" --model-last-checkpoint "$CHECKPOINT_DIR/$previous" $STAGE2_ARGS
previous=$stage2
logs="$logs $LOG_DIR/$stage2"

for data in $STAGE3_DATA; do
    stage3="${NAME_PREFIX}stage3-mattingrefine-$BACKBONE-$data"
    # shellcheck disable=SC2086
    run_stage "stage 3 (MattingRefine on $data)" "$stage3" --stage refine --dataset-name "$data" \
        --epoch-end "$STAGE3_EPOCHS" --model-last-checkpoint "$CHECKPOINT_DIR/$previous" $STAGE3_ARGS
    previous=$stage3
    logs="$logs $LOG_DIR/$stage3"
done

echo "==> done in $(( $(date +%s) - started )) s; final model: $CHECKPOINT_DIR/$previous/$(cat "$CHECKPOINT_DIR/$previous/latest")"
echo "    VisualDL: visualdl --logdir $LOG_DIR"
# A picture of the chained loss curves (needs matplotlib; not fatal without it).
# shellcheck disable=SC2086
$PYTHON -m utils.training.plot "$LOG_DIR/${NAME_PREFIX}chain-loss.png" $logs ||
    echo "run.sh: no loss plot (see above); the VisualDL logs are complete" >&2
exit 0
