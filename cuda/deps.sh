#!/bin/sh
# Installs what building dfill's cuda package needs, when it is missing:
# nvcc (Debian's nvidia-cuda-toolkit, CUDA 11.8 on bookworm), and cuda.h
# with the libcuda.so stub the driver API links against
# (nvidia-cuda-dev). Both live in Debian's non-free component, so the
# Debian sources of this machine get the contrib, non-free and
# non-free-firmware components first. About 3 GB installed. No GPU or
# driver is needed to build; only to run.
set -eu

have() {
	command -v nvcc >/dev/null 2>&1 && [ -f /usr/include/cuda.h ]
}
if have; then
	echo "cuda/deps.sh: nvcc and cuda.h present"
	exit 0
fi

SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo

# deb822 sources (bookworm's default): add each missing component to every
# Components line of the stanzas that name Debian's archive.
found=
for f in /etc/apt/sources.list.d/*.sources; do
	[ -f "$f" ] || continue
	grep -q 'debian\.org/debian' "$f" || continue
	found=1
	for c in contrib non-free non-free-firmware; do
		$SUDO sed -i "/^Components:/{/[[:space:]]$c\([[:space:]]\|\$\)/!s/\$/ $c/}" "$f"
	done
done
# One-line sources (older installs).
if [ -z "$found" ] && [ -f /etc/apt/sources.list ]; then
	for c in contrib non-free non-free-firmware; do
		$SUDO sed -i "/^deb .*debian\.org\/debian/{/[[:space:]]$c\([[:space:]]\|\$\)/!s/\$/ $c/}" /etc/apt/sources.list
	done
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends nvidia-cuda-dev nvidia-cuda-toolkit
have || { echo "cuda/deps.sh: nvcc or /usr/include/cuda.h still missing" >&2; exit 1; }
nvcc --version | tail -n 2
