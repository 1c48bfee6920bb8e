// Package train trains small llada-architecture masked diffusion language
// models on source code, in Go, on the CPU: the model dfill embeds.
//
// The model is the one engine runs: token embedding, blocks of RMSNorm →
// grouped-query bidirectional attention with RoPE (adjacent-pair order) →
// residual, RMSNorm → SwiGLU feed-forward → residual, a final RMSNorm and an
// output projection (tied to the embedding by default) whose logit at
// position i predicts the token at position i (unshifted).
//
// The objective is LLaDA's masked diffusion loss: for each sequence a
// masking ratio t ~ U(ε, 1], each token replaced by the mask token with
// probability t, and cross-entropy on the masked tokens weighted by 1/t,
// summed and divided by the number of tokens that could have been masked.
// A share of the sequences instead mask one contiguous span, whose tail is
// padded with EOS as dfill's infill pads a span longer than its completion,
// so that the model learns what infill asks of it.
//
// Every layer's forward and backward pass is written out here, generic over
// float32 (training, with the engine's kernel.MatMulF32 for the matrix
// products) and float64 (gradient checks against finite differences).
// AdamW with linear warm-up and cosine decay, gradient-norm clipping,
// held-out evaluation and resumable checkpoints complete the trainer;
// Trainer.Export writes a GGUF that engine.Load runs. Checkpoints are GGUF
// files too, whose hyperparameters and vocabulary the engine's readers
// read back (engine.ConfigFromGGUF, tokenizer.FromGGUF).
package train
