//go:build !cuda

package main

import (
	"errors"

	"go.uber.org/zap"

	"github.com/dfill/dfill/engine"
)

// errNoCUDA answers --backend cuda in a build without the cuda tag.
var errNoCUDA = errors.New("--backend cuda: this dfill was built without CUDA. On a machine with an NVIDIA GPU " +
	"(compute capability 8.0 or newer) and its driver, `make cuda-deps cuda` builds bin/dfill-cuda (README, \"On an NVIDIA GPU\")")

// cudaBuilt reports whether --backend cuda can run: not in this build.
func cudaBuilt() error { return errNoCUDA }

// accelerate is never reached without CUDA (cudaBuilt refuses first).
func accelerate(*engine.Model, *zap.Logger) (func(), error) { return nil, errNoCUDA }
