//go:build cuda || cudaemu

// Package cuda runs dfill's models on NVIDIA GPUs: the bidirectional
// forward pass of the dream and llada architectures and the samplers'
// statistics, through the CUDA driver API (gorgonia.org/cu), with kernels
// written in CUDA C (kernels/*.cu), compiled to PTX by nvcc (cuda/ptx.sh,
// committed under ptx/), embedded, and JIT-compiled by the driver for the
// GPU present (compute capability 8.0 or newer).
//
// Open a Device, Load a model's GGUF file onto it, make a Canvas of token
// ids and Step it: each step runs a forward over the passes' rows and
// returns, for each position asked for, the greedy token and its scores;
// Logits returns whole logits rows, as engine.Model.Logits does. Every file
// of the package builds only with the cuda tag (see README.md).
package cuda
