#!/usr/bin/env bash
# Reproduces benchmarks/reid_kgbd.md: trains SimMC, AGE and TrackCon on each KGBD split (seeds 0-4),
# evaluates them and the raw baseline, and writes the table. Run from the repository root
# with the shared data beside it, after `pip install -c constraints.txt -e '.[train]'`.
set -euo pipefail
DATA=${DATA:-../shared/datasets/kgbd/KinectGait-master.zip}
RUNS=${RUNS:-runs}
SEEDS=${SEEDS:-"0 1 2 3 4"}
METHODS=${METHODS:-"simmc age trackcon"}
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
models=()  # TrackCon with the window term only: the shipped model's settings
for seed in $SEEDS; do
  gaitwatch train trackcon --data "$DATA" --split "kgbd:$seed" --out "$RUNS/trackcon1-seed$seed" --set windows_per_group=0
  models+=("$RUNS/trackcon1-seed$seed")
done
gaitwatch eval "${models[@]}" --data "$DATA" --out benchmarks/results/kgbd-trackcon-v1
models=()  # TrackCon v2: the track-level term, not mirror-symmetric (the default before the symmetric encoder)
for seed in $SEEDS; do
  gaitwatch train trackcon --data "$DATA" --split "kgbd:$seed" --out "$RUNS/trackcon2-seed$seed" --set symmetric=false
  models+=("$RUNS/trackcon2-seed$seed")
done
gaitwatch eval "${models[@]}" --data "$DATA" --out benchmarks/results/kgbd-trackcon-v2
models=()  # TrackCon with pseudo pairs: an option, not the default (docs/trackcon.md)
for seed in $SEEDS; do
  gaitwatch train trackcon --data "$DATA" --split "kgbd:$seed" --out "$RUNS/trackcon-pairs-seed$seed" \
    --set pseudo_pairs_from=10
  models+=("$RUNS/trackcon-pairs-seed$seed")
done
gaitwatch eval "${models[@]}" --data "$DATA" --out benchmarks/results/kgbd-trackcon-pairs
python benchmarks/age_selection.py "$RUNS/age-seed0" "$RUNS/age-seed1" --data "$DATA"
for method in simmc trackcon; do  # the shipped model's choice: held-out validation walks, kgbd:0
  gaitwatch train "$method" --data "$DATA" --split kgbd:0 --hold-out-validation --out "$RUNS/$method-holdout-seed0"
  gaitwatch eval "$RUNS/$method-holdout-seed0" --data "$DATA" --on validation --out "benchmarks/results/selection-$method"
done
gaitwatch train trackcon --data "$DATA" --split kgbd:0 --hold-out-validation --out "$RUNS/trackcon1-holdout-seed0" \
  --set windows_per_group=0
gaitwatch eval "$RUNS/trackcon1-holdout-seed0" --data "$DATA" --on validation --out benchmarks/results/selection-trackcon-v1
gaitwatch train trackcon --data "$DATA" --split kgbd:0 --hold-out-validation --out "$RUNS/trackcon2-holdout-seed0" \
  --set symmetric=false
gaitwatch eval "$RUNS/trackcon2-holdout-seed0" --data "$DATA" --on validation --out benchmarks/results/selection-trackcon-v2
gaitwatch train trackcon --data "$DATA" --split kgbd:0 --hold-out-validation --out "$RUNS/trackcon-pairs-holdout-seed0" \
  --set pseudo_pairs_from=10
gaitwatch eval "$RUNS/trackcon-pairs-holdout-seed0" --data "$DATA" --on validation \
  --out benchmarks/results/selection-trackcon-pairs
python benchmarks/strangers_kgbd.py --model raw=raw --model simmc="$RUNS/simmc-seed{seed}" \
  --model trackcon-v1="$RUNS/trackcon1-seed{seed}" --model trackcon-v2="$RUNS/trackcon2-seed{seed}" \
  --model trackcon="$RUNS/trackcon-seed{seed}" --model trackcon-pairs="$RUNS/trackcon-pairs-seed{seed}"
python benchmarks/strangers_kgbd.py --model trackcon-adapted="$RUNS/trackcon-seed{seed}" --adapt-steps 300 --keep
# people never seen in training (docs/trackcon.md) and adapting on a site's enrolled people (docs/site.md)
gaitwatch train trackcon --data "$DATA" --split kgbd:0 --hold-out-people --out "$RUNS/trackcon-people-seed0"
gaitwatch train trackcon --data "$DATA" --split kgbd:0 --hold-out-people --out "$RUNS/trackcon-pairs-people-seed0" \
  --set pseudo_pairs_from=10
python benchmarks/adapt_people.py "$RUNS/trackcon-people-seed0"
python benchmarks/score_normalisation.py "$RUNS/trackcon-holdout-seed0" --draws 20
# hubs, scores and schedules (docs/trackcon.md): people never seen (kgbd:0, 1, 2), both validations after
# adapt --gallery; the JSON of each is kept in benchmarks/results/score_normalisation/
for split in 1 2; do
  gaitwatch train trackcon --data "$DATA" --split kgbd:$split --hold-out-people --out "$RUNS/trackcon-people-seed$split"
  gaitwatch train trackcon --data "$DATA" --split kgbd:$split --hold-out-people \
    --out "$RUNS/trackcon-pairs-people-seed$split" --set pseudo_pairs_from=10
done
for split in 0 1 2; do  # pseudo pairs on people never seen (docs/trackcon.md)
  python benchmarks/score_normalisation.py "$RUNS/trackcon-pairs-people-seed$split" --draws 20 \
    --out "$RUNS/trackcon-pairs-people-seed$split/scores"
done
for run in trackcon-people-seed0 trackcon-people-seed1 trackcon-people-seed2; do
  python benchmarks/score_normalisation.py "$RUNS/$run" --draws 20 --out "$RUNS/$run/scores"
done
for run in trackcon-holdout-seed0 trackcon-people-seed0 trackcon-people-seed1 trackcon-people-seed2; do
  python benchmarks/score_normalisation.py "$RUNS/$run" --draws 20 --adapt-steps 300 --out "$RUNS/$run/scores-adapted"
done
python benchmarks/reid_table.py
