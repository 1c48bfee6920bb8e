// Package kernel holds the pure-Go CPU kernels of dfill's inference engine:
// the numeric formats of GGUF tensors (F16, BF16, Q8_0, Q4_K, Q6_K), bit-exact
// with ggml's block layouts; dot products and a multi-threaded matrix product
// against weights of every supported type; and the vector ops of a
// transformer forward pass (RMSNorm, softmax, SiLU/SwiGLU, RoPE).
//
// These kernels are the reference every faster variant is tested against.
// Their inner loops are reached through package-level function variables
// (dotF32, axpyF32, the row decoders) so that an assembly file can replace
// them at init on CPUs that support it, without touching the callers.
//
// Results never depend on the number of threads: every output element is
// computed by exactly one goroutine with a fixed summation order, so MatMul
// gives bitwise identical results on a Pool of any size.
package kernel
