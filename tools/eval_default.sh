#!/bin/sh
# Measure the default checkpoint against the naive difference key, both with eval.py's protocol
# (fixed composites, perturbed plate, the paper's metrics), on one of two held-out sets:
#
#   sh tools/eval_default.sh [WEIGHTS]            # SET=synthetic: procedural scenes, seed 2024
#   SET=real sh tools/eval_default.sh [WEIGHTS]   # the real-photo validation set (python -m dataset.prepare)
#
# The synthetic set uses seed 2024 (training used seed 0), 20 images at 1280x720; the real set
# is 40 foregrounds at 1280x720 on photographs no training scene uses. Both run the HD setting of
# the model (backbone_scale 0.25, 80,000 refined pixels). NAME prefixes the report names.
set -eu
cd "$(dirname "$0")/.."
WEIGHTS=${1:-weights/bgmv2_mobilenetv2_synthetic.pdparams}
SET=${SET:-synthetic}
NAME=${NAME:-default}

case "$SET" in
synthetic)
    HOLDOUT=${HOLDOUT:-data/synthetic_holdout}
    COUNT=${COUNT:-20}
    [ -d "$HOLDOUT/pha" ] || python -c "
from dataset.synthetic import write_synthetic_dataset
write_synthetic_dataset('$HOLDOUT', $COUNT, size=(720, 1280), seed=2024)"
    DATA="--gt-dir $HOLDOUT --bgr-dir $HOLDOUT/bgr"
    RUN=synthetic-holdout
    ;;
real)
    DATA="--dataset real"
    RUN=real-validation
    ;;
*)
    echo "SET must be synthetic or real, got $SET" >&2
    exit 2
    ;;
esac

# shellcheck disable=SC2086
python eval.py $DATA --weights "$WEIGHTS" --refine-sample-pixels 80000 --run-name "$NAME-$RUN" --no-progress

# The baseline keys the very same composites: eval.py --prepare-only prints their folder.
# shellcheck disable=SC2086
BENCH=$(python eval.py $DATA --prepare-only --no-progress | tail -n 1)
rm -rf "log/baseline-pred-$RUN"
python -m utils.evaluation.baseline "$BENCH/src" "$BENCH/bgr" "log/baseline-pred-$RUN"
python eval.py --pred-dir "log/baseline-pred-$RUN" --gt-dir "$BENCH" --run-name "baseline-$RUN" --no-progress
