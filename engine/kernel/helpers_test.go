package kernel

import (
	"math"
	"math/rand/v2"
	"testing"
)

// newRand returns a generator with a fixed seed, so failures reproduce.
func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)) }

// gaussian returns n standard normal values, none of them zero.
func gaussian(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		for x[i] == 0 {
			x[i] = float32(r.NormFloat64())
		}
	}
	return x
}

// guardBits fills guard cells around every output with a NaN payload that no
// kernel produces.
const guardBits = 0x7fc0dead

const guardLen = 16

// guarded returns a slice of n elements with guardLen sentinel cells on each
// side in the same backing array, and a func that fails t if any was written.
func guarded(t *testing.T, n int) ([]float32, func()) {
	t.Helper()
	buf := make([]float32, n+2*guardLen)
	for i := range buf {
		buf[i] = math.Float32frombits(guardBits)
	}
	check := func() {
		t.Helper()
		for i := 0; i < guardLen; i++ {
			if b := math.Float32bits(buf[i]); b != guardBits {
				t.Fatalf("guard before the output, cell %d, overwritten with %#x", i, b)
			}
			if b := math.Float32bits(buf[guardLen+n+i]); b != guardBits {
				t.Fatalf("guard after the output, cell %d, overwritten with %#x", i, b)
			}
		}
	}
	return buf[guardLen : guardLen+n : guardLen+n], check
}

// relRMS returns the RMS of got-want relative to the RMS of want.
func relRMS(got, want []float32) float64 {
	var se, sw float64
	for i := range want {
		d := float64(got[i]) - float64(want[i])
		se += d * d
		sw += float64(want[i]) * float64(want[i])
	}
	return math.Sqrt(se / sw)
}
