#!/usr/bin/env bash
# One GPU session for the RWKV-7 speed work (issue 3): profile RWKV-7 against SDPA attention under
# each variant of the PyTorch form, then the full primitives table with the fastest variant, then
# the GPU test file. Run from the repo root on the GPU machine with the wheels installed; writes to $OUT.
set -o pipefail
cd "$(dirname "$0")/.."
for v in "rwkv7_solve=trsm" "rwkv7_solve=doubling" "rwkv7_solve=doubling --variant tf32=1"; do
  tag=$(echo "$v" | tr -c 'a-z0-9\n' '_' | sed 's/__*/_/g')
  timeout 60 python3 benchmarks/profile_primitive.py rwkv7 attention --T 2048 --variant $v \
    --out "$OUT/profile-$tag.json" > "$OUT/profile-$tag.txt" 2>&1
  echo "profile $v rc=$?"; grep "^== " "$OUT/profile-$tag.txt"; cat "$OUT/profile-$tag.txt" >> "$OUT/profiles.log"
done
best=$(python3 - <<'PY'
import glob, json, os
best = None
merged = []
for f in sorted(glob.glob(os.path.join(os.environ["OUT"], "profile-*.json"))):
    r = json.load(open(f))
    merged.append(r)
    os.remove(f)
    os.remove(f[:-5] + ".txt")
    w = {x["primitive"]: x["wall_ms"] for x in r["results"]}
    if "rwkv7" in w and (best is None or w["rwkv7"] < best[0]):
        best = (w["rwkv7"], r["variants"])
json.dump(merged, open(os.path.join(os.environ["OUT"], "profiles.json"), "w"), indent=1)
v = best[1] if best else []
args = []
for item in v:
    for part in item.split(" --variant "):
        k, _, val = part.partition("=")
        args += [f"--rwkv7-solve {val}"] if k == "rwkv7_solve" else (["--tf32"] if k == "tf32" and val == "1" else [])
print(" ".join(args))
PY
)
echo "fastest variant: $best"
timeout 100 python3 benchmarks/primitives.py $best --out "$OUT/primitives-best.json" --max-minutes 1.3 > "$OUT/prim_best.log" 2>&1
echo "primitives rc=$?"; tail -32 "$OUT/prim_best.log"
timeout 70 python3 -m pytest -q -p no:cacheprovider tests/proxy_models/test_gpu.py > "$OUT/gputest.log" 2>&1
echo "gpu tests rc=$?"; tail -8 "$OUT/gputest.log"
