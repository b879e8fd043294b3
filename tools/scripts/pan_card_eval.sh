#!/usr/bin/env bash
# The quality tables of a pan-sharpening model card (issue 12): one model against EXP
# (interp23tap upsampling), GSA and MTF-GLP on the validation scenes a training run held out,
# at reduced resolution (Wald's protocol, the MTF of --sensor) and at full resolution (QNR).
#
#   tools/scripts/pan_card_eval.sh NAME MODEL.onnx RUN_DIR OUT_DIR [eval options...]
#
# RUN_DIR is the training run: its config.json names the data folder and the validation
# stems; the script links those scenes into OUT_DIR/val/{ms,pan}. Extra options go to both
# evals (e.g. --bands 1,2,3,4 --ratio 4 for a 4-band ratio-4 model on the ratio-2 Landsat data;
# FULL=0 skips the full-resolution table, which needs a real pair at the model's ratio).
# Writes OUT_DIR/NAME_reduced.{md,json} and OUT_DIR/NAME_full.{md,json}.
set -euo pipefail
if [ $# -lt 4 ]; then
    sed -n '2,13p' "$0" >&2
    exit 2
fi
name=$1 model=$2 run=$3 out=$4
shift 4
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${SHIP_EDGE:-$root/target/release/ship-edge}
sensor=${SENSOR:-landsat7}
data=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["data_dir"])' "$run/config.json")
stems=$(python3 -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))["val_stems"]))' "$run/config.json")
mkdir -p "$out/val/ms" "$out/val/pan"
for s in $stems; do
    ln -sf "$data/ms/$s.tif" "$out/val/ms/$s.tif"
    ln -sf "$data/pan/$s.tif" "$out/val/pan/$s.tif"
done
methods=(--method exp --method gsa --method mtf-glp)
protocols=(reduced)
if [ "${FULL:-1}" != 0 ]; then protocols+=(full); fi
for p in "${protocols[@]}"; do
    "$bin" eval --ms "$out/val/ms" --pan "$out/val/pan" --sensor "$sensor" --protocol "$p" \
        "${methods[@]}" --model "$name=$model" "$@" \
        --json "$out/${name}_$p.json" --markdown "$out/${name}_$p.md"
done
