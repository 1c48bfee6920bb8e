// Package gguf reads and writes GGUF v3 files, the model format of the
// llama.cpp ecosystem: typed metadata key/values, tensor descriptions and
// aligned tensor data, memory-mapped when read from disk.
package gguf
