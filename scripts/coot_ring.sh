#!/usr/bin/env bash
# The CooT pipeline on Coord. Ring from an empty folder: populations, stage-2 baselines (2 seeds),
# dataset, CooT (2 seeds), DAgger on each CooT (not in the paper), BC, evaluation, report.
# Every stage resumes: rerun the script after a kill and it continues where it stopped
# (finished stages are skipped).
#
#   bash scripts/coot_ring.sh [ROOT=runs/coot-ring] [PRESET=default]
set -euo pipefail
ROOT=${1:-runs/coot-ring}
PRESET=${2:-default}
mkdir -p "$ROOT"
done_() { [ -f "$1/report.md" ]; }

pop() {  # pop OUT SEED EVAL_SIZE
  done_ "$1" || { [ -f "$1/config.json" ] && coplay populations train --out "$1" --resume \
    || coplay populations train --layout random1 --preset "$PRESET" --seed "$2" --out "$1"; }
  # the tiny preset's 3-pair populations score 0: keep every pair so each later stage has some
  if [ "$PRESET" = tiny ]; then sel="--eval-size 1 --train-size 2 --eval-min-return -1 --train-min-return -1"
  else sel="--eval-size $3 --train-size 8"; fi
  [ -f "$1/selection.json" ] || coplay populations select --pop "$1" $sel
}
pop "$ROOT/hsp-s0" 0 5    # its training pool (8 pairs) is the CooT's and HSP-adaptive's
pop "$ROOT/hsp-s1" 1 10   # its 10 evaluation partners (the paper's K) are the held-out ones
done_ "$ROOT/mep" || { [ -f "$ROOT/mep/config.json" ] && coplay populations train --out "$ROOT/mep" --resume \
  || coplay populations train --kind mep --layout random1 --preset "$PRESET" --out "$ROOT/mep"; }
sfx() { [ "$1" = 0 ] || echo "-s$1"; }  # seed 0: the folder's plain name, seed 1: -s1
for seed in 0 1; do  # two seeds of every baseline
  for kind in mep hsp; do
    out="$ROOT/$kind-adaptive$(sfx $seed)"; src=$([ $kind = mep ] && echo "$ROOT/mep" || echo "$ROOT/hsp-s0")
    done_ "$out" || { [ -f "$out/config.json" ] && coplay populations train --out "$out" --resume \
      || coplay populations train --kind $kind-adaptive --pop "$src" --preset "$PRESET" \
           --seed $seed --out "$out"; }
  done
  sp="$ROOT/self-play$(sfx $seed)"  # self-play PPO baseline
  done_ "$sp" || { [ -f "$sp/config.json" ] && coplay overcooked train --out "$sp" --resume \
    || coplay overcooked train --layout random1 --preset "$PRESET" --seed $seed --out "$sp"; }
done
coplay coot collect --preset "$PRESET" --collect.hsp "$ROOT/hsp-s0" --collect.mep "$ROOT/mep" \
  --out "$ROOT/data"
for seed in 0 1; do
  out="$ROOT/coot-s$seed"
  done_ "$out" || { [ -f "$out/config.json" ] && coplay coot train --out "$out" --resume \
    || coplay coot train --preset "$PRESET" --dataset "$ROOT/data" --seed $seed --out "$out"; }
done
# not in the paper: DAgger rounds on each CooT (its own play, best-response labels);
# rerunning continues an unfinished folder and skips a finished one
dpreset=$([ "$PRESET" = tiny ] && echo tiny || echo default)
for seed in 0 1; do
  coplay coot dagger --preset "$dpreset" --dataset "$ROOT/data" --dagger.start "$ROOT/coot-s$seed" \
    --dagger.seed $seed --out "$ROOT/dagger-s$seed"
done
done_ "$ROOT/bc" || coplay coot bc --preset "$PRESET" --dataset "$ROOT/data" --out "$ROOT/bc"
done_ "$ROOT/bc-s1" || coplay coot bc --preset "$PRESET" --dataset "$ROOT/data" --seed 1 --out "$ROOT/bc-s1"
for top in 10 25 50; do  # the paper's BC on each pair's top-x % episodes by return
  done_ "$ROOT/bc-top$top" || coplay coot bc --preset "$PRESET" --dataset "$ROOT/data" \
    --bc.top-fraction "0.$top" --out "$ROOT/bc-top$top"
done
coplay coot eval --preset "$PRESET" --eval.partners "$ROOT/hsp-s1" --out "$ROOT/eval" --agent \
  coot-dagger="$ROOT/dagger-s0" coot-dagger="$ROOT/dagger-s1" \
  coot="$ROOT/coot-s0" coot="$ROOT/coot-s1" bc="$ROOT/bc" bc="$ROOT/bc-s1" \
  bc-top10="$ROOT/bc-top10" bc-top25="$ROOT/bc-top25" bc-top50="$ROOT/bc-top50" \
  hsp-adaptive="$ROOT/hsp-adaptive" hsp-adaptive="$ROOT/hsp-adaptive-s1" \
  mep-adaptive="$ROOT/mep-adaptive" mep-adaptive="$ROOT/mep-adaptive-s1" \
  self-play="$ROOT/self-play" self-play="$ROOT/self-play-s1"
echo "report: $ROOT/eval/report.md"
