#!/usr/bin/env bash
# Rebuild every shipped report under results/ from its own runs.csv and history.csv (no MLflow), with the options
# each study was analysed with, then check that a second rebuild gives the same bytes.
#
#   experiments/rebuild_reports.sh            # rebuild in place
#   experiments/rebuild_reports.sh --check    # rebuild into a temporary folder and list what would change
#
# Run from the repository root. PYTHON overrides the interpreter (default: python).
set -euo pipefail

PYTHON=${PYTHON:-python}
CHECK=0
[[ ${1:-} == "--check" ]] && CHECK=1

# folder | options (the same as the reproduce commands in results/README.md)
STUDIES=(
  "compare|--metric conv/aulc stab/loss_spikes stab/grad_spikes conv/epochs_to_target"
  "long-range|--metric conv/aulc"
  "long-range/vs-baseline_lr2|--metric conv/aulc --control baseline_lr2"
  "long-range-2|--preset long_range_2"
  "long-range-2/vs-baseline_lr2|--preset long_range_2_vs_lr2"
  "long-range-2/vs-uniform|--preset long_range_2 --control uniform"
  "lr-control|--metric conv/aulc conv/epochs_to_target"
  "lr-control/vs-baseline_lr2|--metric conv/aulc conv/epochs_to_target --control baseline_lr2"
  "tuned-text|--metric conv/aulc"
)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
for entry in "${STUDIES[@]}"; do
  study=${entry%%|*}
  read -r -a options <<< "${entry#*|}"
  first="$work/$study/first" second="$work/$study/second"
  "$PYTHON" experiments/compare.py --from "results/$study" --out "$first" "${options[@]}" > /dev/null
  "$PYTHON" experiments/compare.py --from "results/$study" --out "$second" "${options[@]}" > /dev/null
  if ! diff -r -q "$first" "$second"; then
    echo "results/$study: two rebuilds differ" >&2
    status=1
    continue
  fi
  if ((CHECK)); then
    changed=$(cd "$first" && find . -type f | sort | while read -r file; do
      cmp -s "$file" "$OLDPWD/results/$study/$file" || echo "results/$study/${file#./} would change"
    done)
    if [[ -n $changed ]]; then
      echo "$changed"
      status=1
    fi
  else
    rm -rf "results/$study/figures"
    # report.md, summary.csv, figures/ and the raw files (copied unchanged)
    cp -r "$first"/. "results/$study/"
    echo "results/$study rebuilt"
  fi
done
exit $status
