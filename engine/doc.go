// Package engine runs masked diffusion language models on the CPU: it loads
// a GGUF model (architectures dream and llada), tokenizes, builds the canvas
// (prefix, masks, suffix) and denoises the masked span with the chosen
// sampler, reusing the prefix and suffix keys and values across steps
// (Fast-dLLM's dual cache).
//
// The numeric kernels live in engine/kernel, the file format in
// engine/gguf and the BPE tokenizer in engine/tokenizer.
package engine
