package train

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/dfill/dfill/engine/kernel"
)

// tinyShape is the gradient-check model: 2 layers, dim 16, grouped-query
// attention (4 query heads, 2 key/value heads of 4 dimensions).
func tinyShape(tied bool) Shape {
	return Shape{Layers: 2, Dim: 16, Heads: 4, KVHeads: 2, FFN: 24, Vocab: 20, Seq: 8, Tied: tied}
}

// tinyBatch is two sequences of 6 tokens with a few masked positions of
// different weights.
func tinyBatch(rng *rand.Rand, s Shape, mask int32) *Batch {
	b := &Batch{}
	b.resize(2, 6)
	for i := range b.Targets {
		b.Targets[i] = int32(rng.IntN(s.Vocab - 1))
		b.Tokens[i] = b.Targets[i]
		if i%3 != 1 {
			b.Tokens[i] = mask
			b.Weights[i] = float32(0.1 + rng.Float64())
		}
	}
	return b
}

// TestModelGradient checks every gradient of the whole model (tied and
// untied output) against finite differences of its loss, in float64.
func TestModelGradient(t *testing.T) {
	pool := kernel.NewPool(2)
	defer pool.Close()
	tests := []struct {
		name string
		tied bool
	}{
		{"tied", true},
		{"untied", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tinyShape(tt.tied)
			m, err := NewModel[float64](s, pool, 3)
			if err != nil {
				t.Fatal(err)
			}
			// Norm gains away from 1 and larger weights, so that every
			// term of the gradient matters.
			rng := rand.New(rand.NewPCG(5, 5))
			for i := range m.W.Data {
				m.W.Data[i] += 0.3 * rng.NormFloat64()
			}
			b := tinyBatch(rng, s, int32(s.Vocab-1))
			if _, err := m.Loss(b, true); err != nil {
				t.Fatal(err)
			}
			grad := append([]float64(nil), m.G.Data...)
			loss := func() float64 {
				l, err := m.Loss(b, false)
				if err != nil {
					t.Fatal(err)
				}
				return l
			}
			for _, sp := range m.W.specs {
				lo, hi := sp.off, sp.off+sp.rows*sp.cols
				checkGrad(t, sp.name, m.W.Data[lo:hi], grad[lo:hi], loss)
			}
		})
	}
}

// TestFloat32MatchesFloat64 runs the same weights through the float32
// model (the engine's kernels) and the float64 one: losses agree to 1e-5
// relative and gradients to 1e-3 of the largest gradient.
func TestFloat32MatchesFloat64(t *testing.T) {
	pool := kernel.NewPool(2)
	defer pool.Close()
	s := tinyShape(true)
	m64, _ := NewModel[float64](s, pool, 1)
	m32, _ := NewModel[float32](s, pool, 1)
	rng := rand.New(rand.NewPCG(9, 9))
	for i := range m64.W.Data {
		m64.W.Data[i] += 0.2 * rng.NormFloat64()
		m32.W.Data[i] = float32(m64.W.Data[i])
		m64.W.Data[i] = float64(m32.W.Data[i])
	}
	b := tinyBatch(rng, s, int32(s.Vocab-1))
	l64, err := m64.Loss(b, true)
	if err != nil {
		t.Fatal(err)
	}
	l32, err := m32.Loss(b, true)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(l64-l32) > 1e-5*math.Abs(l64) {
		t.Errorf("loss: float32 %g, float64 %g", l32, l64)
	}
	var gmax float64
	for _, g := range m64.G.Data {
		gmax = max(gmax, math.Abs(g))
	}
	for i, g := range m64.G.Data {
		if d := math.Abs(float64(m32.G.Data[i]) - g); d > 1e-3*gmax {
			t.Fatalf("gradient %d: float32 %g, float64 %g", i, m32.G.Data[i], g)
		}
	}
}

func TestShapeValidate(t *testing.T) {
	tests := []struct {
		name string
		s    Shape
		ok   bool
	}{
		{"tiny", tinyShape(true), true},
		{"odd head", Shape{Layers: 1, Dim: 12, Heads: 4, KVHeads: 4, FFN: 8, Vocab: 10, Seq: 4}, false},
		{"kv not dividing", Shape{Layers: 1, Dim: 16, Heads: 4, KVHeads: 3, FFN: 8, Vocab: 10, Seq: 4}, false},
		{"no layers", Shape{Dim: 16, Heads: 4, KVHeads: 4, FFN: 8, Vocab: 10, Seq: 4}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewModel[float32](tt.s, nil, 0)
			if (err == nil) != tt.ok {
				t.Errorf("NewModel: %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
