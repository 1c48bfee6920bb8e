// Package gguf reads and writes GGUF files, the model format of the
// llama.cpp ecosystem: typed metadata key/values, tensor descriptions and
// aligned tensor data. It reads versions 2 and 3 (little-endian), a file
// on disk memory-mapped where the platform allows, and writes version 3.
package gguf
