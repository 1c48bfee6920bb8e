// Package engine runs masked diffusion language models on the CPU: it loads
// a GGUF model (architectures dream, llada, and the routed-experts llada-moe
// and rnd1), tokenizes, builds a canvas
// (prefix, masks, suffix) for each span length asked for and denoises the
// spans together, in one batch, with the chosen sampler, optionally reusing
// the prefix's and suffix's keys and values across steps (Fast-dLLM's dual
// cache). It also writes the models it loads (Metadata, WriteModel), and
// random-weight ones for tests and benchmarks (WriteRandom).
//
// The numeric kernels live in engine/kernel, the file format in
// engine/gguf, the BPE tokenizer in engine/tokenizer and the trainer of
// dfill's own models in engine/train.
package engine
