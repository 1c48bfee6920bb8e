package gguf

import (
	"bytes"
	"fmt"
	"testing"
)

// BenchmarkParse parses an image shaped like a real model's header: a
// 151936-token BPE vocabulary with as many merges, and 300 small tensors.
func BenchmarkParse(b *testing.B) {
	const vocab = 151936
	tokens := make([]string, vocab)
	merges := make([]string, vocab)
	types := make([]int32, vocab)
	for i := range tokens {
		tokens[i] = fmt.Sprintf("tok%d", i)
		merges[i] = fmt.Sprintf("t ok%d", i)
		types[i] = 1
	}
	meta := []KV{
		{"general.architecture", Val("llada")},
		{"tokenizer.ggml.tokens", Val(tokens)},
		{"tokenizer.ggml.merges", Val(merges)},
		{"tokenizer.ggml.token_type", Val(types)},
	}
	var ts []TensorData
	for i := range 300 {
		ts = append(ts, TensorData{Name: fmt.Sprintf("blk.%d.w", i), Type: TypeQ8_0, Dims: []uint64{64, 4}, Data: make([]byte, 2*34*4)})
	}
	var buf bytes.Buffer
	if err := Write(&buf, meta, ts); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}
