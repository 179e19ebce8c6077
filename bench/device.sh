#!/usr/bin/env bash
# The CUDA benchmarks on a lent GPU machine, in one call (bench/README.md, "Device run").
#
# Needs, beside the working tree: .whl/ (the wheels the machine lacks) and .device_inputs/
# (bench/device_inputs.py prepare). Writes into $OUT: device.log, bench_{energy,seed,train,synth}.json
# (this run's keys only, cuda_* there) and device_train.json (bench/device_train.py).
# Each part has a timeout inside an overall budget (DEVICE_BUDGET_S, default 450 s); a part that
# fails or times out is logged and the next one runs. The exit status counts the failed parts.
#
# Knobs: PYTHON (python3), OUT, WHEELS (.whl), INPUTS (.device_inputs), SITE (/tmp/site),
# DEXLITE_BENCH_DEVICES (cuda), DEVICE_TRAIN_S (120: the training's budget),
# DEVICE_TIMEOUT_SCALE (1: multiplies each part's timeout), DEVICE_SKIP (names of parts to
# leave out, e.g. "bench_energy bench_anneal" to rerun the others),
# DEVICE_SMOKE=1: a short rehearsal (a few objects, a few training steps), e.g. on a CPU with
# DEXLITE_BENCH_DEVICES=cpu, OUT and SITE under /tmp, a larger budget and timeout scale.
set -u
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
OUT=${OUT:?set OUT to the folder for the results (the device tool sets it)}
WHEELS=${WHEELS:-.whl}
INPUTS=${INPUTS:-.device_inputs}
SITE=${SITE:-/tmp/site}
SMOKE=${DEVICE_SMOKE:-0}
BUDGET=${DEVICE_BUDGET_S:-450}
TRAIN_S=${DEVICE_TRAIN_S:-120}
SCALE=${DEVICE_TIMEOUT_SCALE:-1}
SKIP=" ${DEVICE_SKIP:-} "
export DEXLITE_BENCH_DEVICES=${DEXLITE_BENCH_DEVICES:-cuda}
export DEXLITE_BENCH_RESULTS=$OUT PYTHONUNBUFFERED=1
mkdir -p "$OUT"
exec > >(tee -a "$OUT/device.log") 2>&1
TEE=$!
T0=$SECONDS
FAILED=()

left() { echo $((BUDGET - (SECONDS - T0))); }

# part NAME TIMEOUT_S COMMAND...: run it with a timeout cut to the budget left; log rc and time.
part() {
  local name=$1 limit=$2 rem rc t
  shift 2
  if [[ $SKIP == *" $name "* ]]; then
    echo "== $name: skipped (DEVICE_SKIP)"
    return
  fi
  limit=$((limit * SCALE))
  rem=$(($(left) - 5))
  ((limit > rem)) && limit=$rem
  if ((limit < 10)); then
    echo "== $name: skipped, $(left) s of the budget left"
    FAILED+=("$name(skipped)")
    return
  fi
  echo "== $name: start $(date +%T), timeout ${limit} s: $*"
  t=$SECONDS
  timeout -k 10 "$limit" "$@"
  rc=$?
  echo "== $name: rc $rc after $((SECONDS - t)) s ($((SECONDS - T0)) s in all)"
  ((rc == 0)) || FAILED+=("$name(rc=$rc)")
}

echo "== device.sh $(date -u +%FT%TZ) in $PWD, commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')," \
  "smoke=$SMOKE devices=$DEXLITE_BENCH_DEVICES budget=${BUDGET}s"
git status --short 2>/dev/null | head -20
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
else
  echo "no nvidia-smi"
fi
nproc

part wheels 120 "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target "$SITE" "$WHEELS"/*.whl
cp -r "$INPUTS/site/." "$SITE/"
export PYTHONPATH=$SITE:$PWD

part versions 60 "$PYTHON" - <<'EOF'
import importlib.metadata as md, importlib.util, platform, sys
import torch
print("python", platform.python_version(), sys.executable)
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available(),
      torch.cuda.get_device_name() if torch.cuda.is_available() else "")
import mujoco, numpy, point_cloud_utils, pytorch_kinematics, trimesh  # noqa: F401,E401
for name in ("numpy", "scipy", "pandas", "pyarrow", "trimesh", "mujoco", "mujoco-core", "pytorch_kinematics",
             "arm_pytorch_utilities", "pytorch_seed", "point-cloud-utils", "manifold3d", "lxml", "matplotlib"):
    try:
        print(f"  {name} {md.version(name)}")
    except md.PackageNotFoundError:
        print(f"  {name} MISSING")
for name in ("gymnasium_robotics", "pybullet_data"):
    spec = importlib.util.find_spec(name)
    print(f"  {name} data at {list(spec.submodule_search_locations)[0] if spec else 'MISSING'}")
EOF

if ((SMOKE)); then smoke=(--smoke 3); else smoke=(); fi
# A checkout's own data/ is used as it is and never changed (the inputs fill only what is missing).
[[ -e data/refine/model.pt ]] && carried_model=0 || carried_model=1
SCRATCH=$(mktemp -d)
part inputs 120 "$PYTHON" bench/device_inputs.py install --src "$INPUTS" --workers "$(nproc)" "${smoke[@]}"

part bench_energy 90 "$PYTHON" bench/bench_energy.py
part bench_train 90 "$PYTHON" bench/bench_train.py
part bench_anneal 150 "$PYTHON" bench/bench_anneal.py

# The training gets what is left of the budget, at most DEVICE_TRAIN_S, less ~70 s for its
# start-up, calibration and last validation and ~75 s for bench_synth after it.
if ((SMOKE)); then
  train=(--seconds 3 --calibrate 4 --max-steps 6)
else
  train_s=$(($(left) - 145))
  ((train_s > TRAIN_S)) && train_s=$TRAIN_S
  ((train_s < 10)) && train_s=10
  train=(--seconds "$train_s")
fi
part device_train $((($(left) - 75) / SCALE)) "$PYTHON" bench/device_train.py "${train[@]}" \
  --out "$OUT/device_train.json" --save-checkpoint "$SCRATCH/device_model.pt"

# bench_synth needs a checkpoint of this tree's network: the carried one, else the one just trained.
loads='from dexlite_core.model.train import load_checkpoint; load_checkpoint("data/refine/model.pt")'
if ((carried_model)) && ! "$PYTHON" -c "$loads" 2>/dev/null; then
  if [[ -f $SCRATCH/device_model.pt ]]; then
    echo "== the carried data/refine/model.pt does not load with this tree's network:" \
      "bench_synth uses device_train's checkpoint (no refiner: its *_refiner_passes key says 0)"
    mv data/refine/model.pt data/refine/model.carried.pt && cp "$SCRATCH/device_model.pt" data/refine/model.pt
  else
    echo "== data/refine/model.pt does not load with this tree's network and device_train left none"
  fi
fi
part bench_synth 90 "$PYTHON" bench/bench_synth.py

echo "== done in $((SECONDS - T0)) s; failed: ${FAILED[*]:-none}"
ls -la "$OUT"
exec >&- 2>&-
wait "$TEE"
exit "${#FAILED[@]}"
