#!/usr/bin/env bash
# Wheels for bench/device.sh: the packages the benchmarked code imports that the GPU machine's
# image lacks (its python3 is 3.12 with torch, numpy, scipy, pandas, pyarrow, lxml, matplotlib,
# pyyaml, tqdm, absl-py), at the versions of requirements.lock, for CPython 3.12 on x86-64 Linux.
# Into .whl/ (ignored through .git/info/exclude); about 21 MiB.
#
# Left out on purpose: mujoco-studio, glfw, PyOpenGL (rendering only; `import mujoco` goes on
# without them), rtree (no trimesh path used here needs it), coacd (only for non-convex meshes
# that the objects stage decomposes; the benches read built objects, and bench_energy's own
# builds are convex pieces), pybullet and gymnasium-robotics (their data files alone travel in
# .device_inputs/site, see bench/device_inputs.py), dvclive (the train stage only).
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${1:-.whl}
PACKAGES=(trimesh pytorch_kinematics arm_pytorch_utilities pytorch-seed mujoco mujoco-core point-cloud-utils manifold3d)
PLATFORMS=(manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64)
pins=()
for name in "${PACKAGES[@]}"; do
  pin=$(grep -i "^${name}==" requirements.lock) || { echo "$name is not in requirements.lock" >&2; exit 1; }
  pins+=("$pin")
done
exclude=$(git rev-parse --git-path info/exclude)
grep -qx "/.whl/" "$exclude" 2>/dev/null || echo "/.whl/" >>"$exclude"
rm -rf "$DEST" && mkdir -p "$DEST"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${PLATFORMS[@]/#/--platform=}" -d "$DEST" "${pins[@]}"
ls -l "$DEST" && du -sh "$DEST"
