//go:build !cuda

package main

import "errors"

// errNoCUDA answers --backend cuda in a build without the cuda tag.
var errNoCUDA = errors.New("--backend cuda: this dfill was built without CUDA. On a machine with an NVIDIA GPU " +
	"(compute capability 8.0 or newer) and its driver, `make cuda-deps cuda` builds bin/dfill-cuda (README, \"On an NVIDIA GPU\")")
