#!/bin/sh
# The GPU checks of package cuda, for a machine with an NVIDIA GPU
# (compute capability 8.0 or newer), its driver and Python 3, and no Go:
# it runs binaries built beforehand on a build machine with `make cuda`:
#
#   bin/cuda.test    go test -c -tags cuda ./cuda: every check and benchmark
#   bin/dfill-cuda   go build -tags cuda ./cmd/dfill: writes the benchmarks'
#                    random models (dfill model random), several at once
#
# Run from the repository root: cuda/check.sh. It runs every check (each
# kernel against the CPU's, the model's logits and greedy denoising against
# engine's), then the timings (BenchmarkStep), and prints one table. About
# 10 minutes on an H100; exits non-zero on any failure.
set -u
cd "$(dirname "$0")/.."
TEST=${TEST:-bin/cuda.test}
DFILL=${DFILL:-bin/dfill-cuda}
OUT=${OUT:-$(mktemp -d)}
for b in "$TEST" "$DFILL"; do
	[ -x "$b" ] || { echo "cuda/check.sh: $b missing: run make cuda on a build machine first" >&2; exit 1; }
done
command -v python3 >/dev/null || { echo "cuda/check.sh: python3 missing" >&2; exit 1; }
models=$OUT/models
mkdir -p "$models"
echo "cuda/check.sh: logs and models in $OUT"
command -v nvidia-smi >/dev/null && nvidia-smi -L

# The random models of the qwen2.5 shapes, several written at once: the
# checks read the 0.5b ones, the timings all four.
pids=
for preset in qwen2.5-0.5b qwen2.5-1.5b; do
	for typ in bf16 q8_0; do
		"$DFILL" model random --preset "$preset" --arch dream --type "$typ" \
			--out "$models/$preset-$typ.gguf" >"$OUT/random-$preset-$typ.log" 2>&1 &
		pids="$pids $!"
	done
done

status=0
for p in $pids; do
	wait "$p" || { echo "cuda/check.sh: writing a random model failed (see $OUT/random-*.log)" >&2; status=1; }
done
"$TEST" -test.v -test.count=1 -test.run '^Test' -test.timeout 5m -cuda.models "$models" >"$OUT/checks.log" 2>&1 || status=1
"$TEST" -test.run '^$' -test.bench '^BenchmarkStep$' -test.benchtime 20x -test.timeout 4m \
	-cuda.models "$models" >"$OUT/timings.log" 2>&1 || status=1

python3 - "$OUT/checks.log" "$OUT/timings.log" <<'EOF' || status=1
import re, sys

checks, timings = (open(p, errors="replace").read() for p in sys.argv[1:3])
tests, failed = [], False  # top-level: [name, result, seconds, passed subtests, subtests, failed subtests]
for line in checks.splitlines():
    m = re.match(r"^(\s*)--- (PASS|FAIL|SKIP): (\S+) \(([\d.]+)s\)", line)
    if not m:
        continue
    depth, result, name, secs = len(m.group(1)) // 4, m.group(2), m.group(3), m.group(4)
    failed |= result == "FAIL"
    if depth == 0:
        # go test prints a test's line before its subtests' lines.
        tests.append([name, result, secs, 0, 0, []])
    elif tests:
        tests[-1][3] += result == "PASS"
        tests[-1][4] += 1
        if result == "FAIL":
            tests[-1][5].append(name)
rows = tests
gpu = next((l for l in checks.splitlines() if l.startswith("GPU ")), "GPU: not reached (see checks.log)")
print()
print(gpu)
print()
print(f"{'check':<56} {'result':<6} {'subtests':>9} {'s':>8}")
for name, result, secs, ok, n, bad in tests:
    print(f"{name:<56} {result:<6} {f'{ok}/{n}' if n else '':>9} {secs:>8}")
    for b in bad:
        print(f"  FAIL {b}")
finished = re.search(r"^(PASS|FAIL)$", checks, re.M)
if not rows or not finished or finished.group(1) == "FAIL":
    print("checks: failed or did not finish; tail of checks.log:")
    print("\n".join(checks.splitlines()[-30:]))
    failed = True
print()
print(f"{'timing (cache on, canvas 1024)':<48} {'ms/step':>9} {'floor bw':>9} {'floor tc':>9} {'positions/s':>12}")
bench = 0
for line in timings.splitlines():
    if not line.startswith("BenchmarkStep/"):
        continue
    fields = line.split()
    name = re.sub(r"-\d+$", "", fields[0][len("BenchmarkStep/"):])
    metrics = {unit: float(v) for v, unit in zip(fields[2::2], fields[3::2])}
    bench += 1
    print(f"{name:<48} {metrics.get('ms/step', 0):>9.3f} {metrics.get('floor-bw-ms', 0):>9.3f} "
          f"{metrics.get('floor-tc-ms', 0):>9.3f} {metrics.get('positions/s', 0):>12.0f}")
if bench == 0 or "FAIL" in timings:
    print("timings: failed or missing; tail of timings.log:")
    print("\n".join(timings.splitlines()[-30:]))
    failed = True
print()
print("floor bw: the weight bytes a step reads over the bandwidth of the device attributes (memory clock x bus width x 2);")
print("floor tc: its flops over the dense bf16 tensor-core peak Info.TensorFLOPS assumes (SMs x clock x 4096 on sm_90).")
sys.exit(1 if failed else 0)
EOF
[ "$status" = 0 ] && echo "cuda/check.sh: all passed" || echo "cuda/check.sh: FAILED (logs in $OUT)"
exit "$status"
