#!/usr/bin/env bash
# Reproduces benchmarks/reid_kgbd.md: trains SimMC and AGE on each KGBD split (seeds 0-4),
# evaluates them and the raw baseline, and writes the table. Run from the repository root
# with the shared data beside it, after `pip install -c constraints.txt -e '.[train]'`.
set -euo pipefail
DATA=${DATA:-../shared/datasets/kgbd/KinectGait-master.zip}
RUNS=${RUNS:-runs}
SEEDS=${SEEDS:-"0 1 2 3 4"}
METHODS=${METHODS:-"simmc age"}
splits=()
for seed in $SEEDS; do splits+=(--split "kgbd:$seed"); done
gaitwatch eval raw --data "$DATA" "${splits[@]}" --out benchmarks/results/kgbd-raw
for method in $METHODS; do
  models=()
  for seed in $SEEDS; do
    gaitwatch train "$method" --data "$DATA" --split "kgbd:$seed" --out "$RUNS/$method-seed$seed"
    models+=("$RUNS/$method-seed$seed")
  done
  gaitwatch eval "${models[@]}" --data "$DATA" --out "benchmarks/results/kgbd-$method"
done
python benchmarks/age_selection.py "$RUNS/age-seed0" "$RUNS/age-seed1" --data "$DATA"
python benchmarks/reid_table.py
