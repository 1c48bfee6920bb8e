//go:build cuda

package main

import "errors"

// errNoCUDA answers --backend cuda in the cuda build: the cuda package
// runs a model's forward pass and the greedy step's statistics on the GPU
// (cuda.Model), but the engine's samplers, cache and batching do not drive
// it yet, so no command can select it.
var errNoCUDA = errors.New("--backend cuda: this build has the CUDA kernels and device model (package cuda, " +
	"checked by bin/cuda.test), but dfill's samplers do not run on them yet; use --backend cpu")
