#!/usr/bin/env bash
# Rebuild the shipped default generator (data/generators/frl_uv64.pt + .json) from the CC BY Face Research Lab photos:
#   FRL photos -> UV dataset (python -m ganfit.data_build) -> split by person -> train_texture_gan.py
#   experiment=uv_default -> fp16 export -> card with sha256, commands, timings and attribution.
# Usage: GANFIT_PHOTOS=... GANFIT_ASSETS=... bash scripts/build_default_generator.sh [WORK_DIR] [extra training overrides]
# OUT_GENERATOR=path.pt writes somewhere else than data/generators/frl_uv64.pt (its card goes beside it).
# (`make default-generator` runs it with WORK_DIR=outputs/default-generator). Every step is timed into WORK_DIR/steps.json.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT_GENERATOR:-data/generators/frl_uv64.pt}
WORK=${1:-outputs/default-generator}
shift || true
: "${GANFIT_PHOTOS:?set GANFIT_PHOTOS to the folder holding frl-london/ and frl-canada/}"
mkdir -p "$WORK"
STEPS="$WORK/steps.jsonl"
: > "$STEPS"

step() {  # step NAME COMMAND...: run, time, and record the command line
  local name=$1; shift
  echo "== $name: $*"
  local start=$(date +%s)
  "$@"
  local seconds=$(( $(date +%s) - start ))
  "$PY" -c 'import json,sys; print(json.dumps({"step": sys.argv[1], "seconds": int(sys.argv[2]), "command": " ".join(sys.argv[3:])}))' \
    "$name" "$seconds" "$@" >> "$STEPS"
  echo "== $name took ${seconds}s"
}

ls "$GANFIT_PHOTOS"/frl-london/neutral_front/*.jpg "$GANFIT_PHOTOS"/frl-london/smiling_front/*.jpg \
   "$GANFIT_PHOTOS"/frl-canada/*.jpg > "$WORK/photos.txt"
step build "$PY" -m ganfit.data_build image="$WORK/photos.txt" out="$WORK/uv" progress=false
step split "$PY" -m ganfit.data_build.split root="$WORK/uv"
step contact_sheet "$PY" -m ganfit.data_build.contact_sheet root="$WORK/uv" columns=20 size=96
step train "$PY" train_texture_gan.py experiment=uv_default data.root="$WORK/uv/split/train" logger=csv \
    trainer.enable_progress_bar=false torch_threads=1 hydra.run.dir="$WORK/gan" "$@"
step export "$PY" -m ganfit.gan export ckpt="$WORK/gan/checkpoints/last.ckpt" out="$OUT" half=true
"$PY" -c 'import json,sys; print(json.dumps([json.loads(l) for l in open(sys.argv[1])], indent=1))' "$STEPS" > "$WORK/steps.json"
"$PY" -m ganfit.gan.default generator="$OUT" run_dir="$WORK/gan" dataset_dir="$WORK/uv" steps="$WORK/steps.json"
