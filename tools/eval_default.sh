#!/bin/sh
# Measure the default checkpoint against the naive difference key on a held-out synthetic set,
# both with eval.py's protocol (fixed composites, perturbed plate, the paper's metrics).
#
#   sh tools/eval_default.sh [WEIGHTS]
#
# The held-out set uses seed 2024 (training used seed 0), 20 images at 1280x720, and the HD
# setting of the model (backbone_scale 0.25, 80,000 refined pixels).
set -eu
cd "$(dirname "$0")/.."
WEIGHTS=${1:-weights/bgmv2_mobilenetv2_synthetic.pdparams}
HOLDOUT=${HOLDOUT:-data/synthetic_holdout}
COUNT=${COUNT:-20}

[ -d "$HOLDOUT/pha" ] || python -c "
from dataset.synthetic import write_synthetic_dataset
write_synthetic_dataset('$HOLDOUT', $COUNT, size=(720, 1280), seed=2024)"

python eval.py --gt-dir "$HOLDOUT" --bgr-dir "$HOLDOUT/bgr" --weights "$WEIGHTS" \
    --refine-sample-pixels 80000 --run-name default-synthetic-holdout --no-progress

# The baseline keys the very same composites: eval.py --prepare-only prints their folder.
BENCH=$(python eval.py --gt-dir "$HOLDOUT" --bgr-dir "$HOLDOUT/bgr" --prepare-only --no-progress | tail -n 1)
rm -rf log/baseline-pred
python -m utils.evaluation.baseline "$BENCH/src" "$BENCH/bgr" log/baseline-pred
python eval.py --pred-dir log/baseline-pred --gt-dir "$BENCH" --run-name baseline-synthetic-holdout --no-progress
