// Package convert turns a Hugging Face checkpoint folder (config.json,
// *.safetensors, tokenizer.json and its configuration files) into a GGUF
// file that dfill and llama.cpp both load, with the metadata keys and
// tensor names llama.cpp's convert_hf_to_gguf.py writes for the family:
// dream (Dream, Dream-Coder, DiffuCoder, DreamOn, Open-dCoder), llada
// (LLaDA), llada-moe (LLaDA-MoE) and rnd1 (RND1), the last two with each
// block's experts stacked into one tensor per matrix. It reads one tensor
// at a time, so a checkpoint need not fit in memory.
package convert

import "errors"

// Errors returned (wrapped, with the file and the reason) by Convert.
var (
	// ErrUnknownArch: config.json's architectures names no family dfill
	// converts.
	ErrUnknownArch = errors.New("convert: unknown architecture")
	// ErrUnsupported: a feature dfill knows of but cannot convert (shared
	// experts, a dense layer in a MoE model, a tokenizer that is not
	// byte-level BPE), or an output type it does not write.
	ErrUnsupported = errors.New("convert: not supported yet")
	// ErrBadCheckpoint: a file of the checkpoint is missing or malformed.
	ErrBadCheckpoint = errors.New("convert: bad checkpoint")
)
