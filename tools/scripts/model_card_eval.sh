#!/usr/bin/env bash
# The quality tables of a model card (issue 14): one IVIF model against the classical
# baselines on the RoadScene validation pairs, and against the baselines plus the published
# outputs of SeAFusion, PIAFusion, IFCNN and U2Fusion on the 22 TNO pairs of tno_tang.
# Default convention, ranked over EN, SD, SF, MI, SCD, VIF, Qabf, SSIM. Each model is scored
# in its own table: a mean rank depends on every method in the table.
#
#   tools/scripts/model_card_eval.sh NAME MODEL.onnx VAL_DIR OUT_DIR
#
# VAL_DIR holds ir/ and vi/ (the validation pairs the training run held out); the TNO data is
# read from ../shared/data/ivif/tno_tang (override with TNO=DIR). Writes OUT_DIR/NAME_tno.{md,json}
# and OUT_DIR/NAME_val.{md,json}.
set -euo pipefail
if [ $# -ne 4 ]; then
    sed -n '2,12p' "$0" >&2
    exit 2
fi
name=$1 model=$2 val=$3 out=$4
root=$(cd "$(dirname "$0")/../.." && pwd)
tno=${TNO:-$root/../shared/data/ivif/tno_tang}
bin=${SHIP_EDGE:-$root/target/release/ship-edge}
metrics=EN,SD,SF,MI,SCD,VIF,Qabf,SSIM
baselines=(--method average --method max --method laplacian --method gff)
mkdir -p "$out"
published=()
for m in SeAFusion PIAFusion IFCNN U2Fusion; do
    published+=(--fused "$m=$tno/fused/$m")
done
"$bin" eval --ir "$tno/ir" --vis "$tno/vi" "${baselines[@]}" "${published[@]}" \
    --model "$name=$model" --metrics "$metrics" \
    --json "$out/${name}_tno.json" --markdown "$out/${name}_tno.md"
"$bin" eval --ir "$val/ir" --vis "$val/vi" "${baselines[@]}" \
    --model "$name=$model" --metrics "$metrics" \
    --json "$out/${name}_val.json" --markdown "$out/${name}_val.md"
