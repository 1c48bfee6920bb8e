#!/bin/sh
# Compiles cuda/kernels/*.cu to PTX (nvcc -ptx, virtual architecture
# compute_80: the driver JIT-compiles it for the GPU present, sm_80 or
# newer) into cuda/ptx/, which the cuda package embeds. The PTX is
# committed, so that building the package needs only cuda.h and libcuda,
# not nvcc.
#
#   cuda/ptx.sh          rewrite cuda/ptx/*.ptx
#   cuda/ptx.sh --check  compile into a temporary folder and fail unless
#                        cuda/ptx/ holds exactly that (make cuda runs this)
#
# NVCC and NVCCFLAGS override the compiler and its flags. The committed PTX
# is what Debian bookworm's nvidia-cuda-toolkit (CUDA 11.8) writes; another
# nvcc writes different (equally valid) PTX, and --check says so.
set -eu
cd "$(dirname "$0")"
NVCC=${NVCC:-nvcc}
NVCCFLAGS=${NVCCFLAGS:-"-arch=compute_80 -std=c++17 -O3"}
command -v "$NVCC" >/dev/null 2>&1 || { echo "cuda/ptx.sh: $NVCC not found (make cuda-deps installs it)" >&2; exit 1; }

out=ptx
check=
if [ "${1:-}" = --check ]; then
	check=1
	out=$(mktemp -d)
	trap 'rm -rf "$out"' EXIT
fi
mkdir -p "$out"
for src in kernels/*.cu; do
	name=$(basename "$src" .cu)
	# shellcheck disable=SC2086
	$NVCC -ptx $NVCCFLAGS -o "$out/$name.ptx" "$src"
done
if [ -z "$check" ]; then
	# Drop PTX whose source is gone.
	for p in ptx/*.ptx; do
		[ -f "kernels/$(basename "$p" .ptx).cu" ] || rm -f "$p"
	done
	echo "cuda/ptx.sh: wrote $(ls ptx/*.ptx | wc -l) PTX files with $($NVCC --version | tail -n 1)"
	exit 0
fi
if ! diff -r -q ptx "$out" >/dev/null; then
	diff -r -q ptx "$out" >&2 || true
	echo "cuda/ptx.sh: cuda/ptx/ does not match a fresh build of cuda/kernels with $($NVCC --version | tail -n 1): run cuda/ptx.sh and commit cuda/ptx/" >&2
	exit 1
fi
# What the driver does at load time, ahead: assemble the PTX for the
# oldest and the newest GPU generation it targets.
PTXAS=${PTXAS:-ptxas}
if command -v "$PTXAS" >/dev/null 2>&1; then
	for p in ptx/*.ptx; do
		for arch in sm_80 sm_90; do
			"$PTXAS" -arch=$arch -o /dev/null "$p"
		done
	done
fi
echo "cuda/ptx.sh: cuda/ptx/ matches cuda/kernels and assembles for sm_80 and sm_90"
