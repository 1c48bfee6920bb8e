package gguf

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// FuzzParse feeds Parse arbitrary bytes. It must never panic, and whatever
// it accepts must survive Write and Parse again with the same metadata and
// tensors.
func FuzzParse(f *testing.F) {
	rng := rand.New(rand.NewPCG(5, 6))
	tensors := randomTensors(rng)
	// Keep seeds small so the fuzzer can mutate them quickly.
	small := []TensorData{tensors[0], tensors[5], tensors[9]}
	seeds := [][]byte{
		encode(f, nil, nil),
		encode(f, allValues(), nil),
		encode(f, allValues()[:6], small),
		encode(f, []KV{{AlignmentKey, Val(uint32(8))}, {"general.architecture", Val("llada")}}, small[:1]),
		header(2, 0).tensor("a", TypeF32, 32, 8).tensor("b", TypeF32, 0, 8).data(32, 64).b,
		(&builder{}).raw("GGUF").u32(2).u64(0).u64(1).kv("n", ValueArray).nested(3).b,
	}
	for _, s := range seeds {
		f.Add(s)
		// Truncations at a few places, and a flipped byte.
		for _, n := range []int{4, 12, 24, len(s) / 2, len(s) - 1} {
			if n < len(s) {
				f.Add(s[:n])
			}
		}
		if len(s) > 30 {
			c := bytes.Clone(s)
			c[len(c)/3] ^= 0xff
			f.Add(c)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := Parse(data)
		if err != nil {
			return
		}
		var ts []TensorData
		for _, ti := range g.Tensors {
			ts = append(ts, TensorData{Name: ti.Name, Type: ti.Type, Dims: ti.Dims, Data: ti.Data})
		}
		var buf bytes.Buffer
		if err := Write(&buf, g.Metadata, ts); err != nil {
			t.Fatalf("Parse accepted what Write rejects: %v", err)
		}
		h, err := Parse(buf.Bytes())
		if err != nil {
			t.Fatalf("Parse rejects what Write wrote: %v", err)
		}
		checkSame(t, h, g.Metadata, ts)
		if h.Alignment != g.Alignment {
			t.Errorf("alignment %d, then %d", g.Alignment, h.Alignment)
		}
	})
}
