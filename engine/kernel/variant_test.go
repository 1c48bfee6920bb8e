package kernel

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/dfill/dfill/engine/gguf"
)

// forEachVariant runs f as a subtest for each kernel set this machine can
// run (avx512, avx2, generic), with that set installed.
func forEachVariant(t *testing.T, f func(t *testing.T, variant string)) {
	t.Helper()
	for _, v := range kernelVariants() {
		t.Run(v, func(t *testing.T) {
			restore := useVariant(v)
			defer restore()
			f(t, v)
		})
	}
}

// TestDecodersMatchGeneric checks every variant's row decoders against the
// pure-Go ones on random bytes (any bit pattern, NaNs and infinities of the
// half types included) for awkward numbers of blocks: the results must be
// bitwise equal, except that a NaN need only decode to a NaN (VCVTPH2PS
// quiets signaling NaNs), and nothing around dst may be written.
func TestDecodersMatchGeneric(t *testing.T) {
	generic := map[gguf.Type]rowDecoder{
		gguf.TypeF32: decodeF32Generic, gguf.TypeF16: decodeF16Generic, gguf.TypeBF16: decodeBF16Generic,
		gguf.TypeQ8_0: decodeQ8_0Generic, gguf.TypeQ4_K: decodeQ4KGeneric, gguf.TypeQ6_K: decodeQ6KGeneric,
	}
	forEachVariant(t, func(t *testing.T, _ string) {
		for _, typ := range allTypes {
			for _, blocks := range []int{1, 7, 33, 127} {
				t.Run(fmt.Sprintf("%s/%d", typ, blocks), func(t *testing.T) {
					n := blocks * typ.BlockSize()
					src := make([]byte, blocks*typ.TypeSize())
					r := newRand(uint64(n))
					for i := range src {
						src[i] = byte(r.Uint32())
					}
					want := make([]float32, n)
					generic[typ](want, src)
					got, check := guarded(t, n)
					decoderFor(typ)(got, src)
					check()
					for i := range want {
						g, w := got[i], want[i]
						if math.Float32bits(g) != math.Float32bits(w) && !(g != g && w != w) {
							t.Fatalf("element %d: %g (%#x), want %g (%#x)", i, g, math.Float32bits(g), w, math.Float32bits(w))
						}
					}
				})
			}
		}
	})
}

// TestGemmKCSplits makes sure TestMatMulDeterministic's widest shape is
// really split into column chunks, so that it tests their seams.
func TestGemmKCSplits(t *testing.T) {
	if kc := gemmKC(300, 1024); kc >= 1024 || kc%256 != 0 {
		t.Errorf("gemmKC(300, 1024) = %d, want a multiple of 256 below 1024", kc)
	}
}

// TestVectorOpsMatchGeneric checks every variant's row-wise vector ops
// against the pure-Go ones on awkward lengths, with guard values around
// every output: Max (NaNs sprinkled in, whole blocks and tails), Scale and
// RMSNorm's final scaling bitwise; RMSNorm's float64 sum of squares within
// 1e-12 relative (the order of the additions differs); RoPE in both orders
// within 1e-6 of the largest |x| (the assembly fuses one multiply-add).
func TestVectorOpsMatchGeneric(t *testing.T) {
	lengths := []int{0, 1, 2, 7, 15, 16, 17, 34, 63, 64, 65, 127, 200, 1000}
	nan := float32(math.NaN())
	forEachVariant(t, func(t *testing.T, _ string) {
		for _, n := range lengths {
			t.Run(fmt.Sprint(n), func(t *testing.T) {
				x := gaussian(newRand(uint64(n)+31), n)
				w := gaussian(newRand(uint64(n)+32), n)

				withNaN := slices.Clone(x)
				for i := 3; i < n; i += 29 {
					withNaN[i] = nan
				}
				allNaN := make([]float32, n)
				for i := range allNaN {
					allNaN[i] = nan
				}
				for _, v := range [][]float32{x, withNaN, allNaN} {
					if got, want := Max(v), maxGeneric(v); math.Float32bits(got) != math.Float32bits(want) {
						t.Fatalf("Max = %g, generic %g", got, want)
					}
				}

				out, check := guarded(t, n)
				copy(out, x)
				Scale(out, 0.37)
				check()
				want := slices.Clone(x)
				scaleGeneric(want, 0.37)
				if !bitsEqual(out, want) {
					t.Fatalf("Scale = %v, generic %v", out, want)
				}

				out, check = guarded(t, n)
				mulScaled(out, x, w, 1.7)
				check()
				mulScaledGeneric(want, x, w, 1.7)
				if !bitsEqual(out, want) {
					t.Fatalf("mulScaled = %v, generic %v", out, want)
				}
				if got, want := sumSq(x), sumSqGeneric(x); math.Abs(got-want) > 1e-12*want {
					t.Fatalf("sumSq = %g, generic %g", got, want)
				}

				if n%2 != 0 {
					return
				}
				half := n / 2
				cs, sn := make([]float32, half), make([]float32, half)
				for i := range cs {
					s, c := math.Sincos(0.1 + 0.7*float64(i))
					cs[i], sn[i] = float32(c), float32(s)
				}
				var amax float64
				for _, v := range x {
					amax = math.Max(amax, math.Abs(float64(v)))
				}
				for _, neox := range []bool{false, true} {
					out, check := guarded(t, n)
					copy(out, x)
					copy(want, x)
					if neox {
						ropeHalves(out[:half], out[half:], cs, sn)
						ropeHalvesGeneric(want[:half], want[half:], cs, sn)
					} else {
						ropePairs(out, cs, sn)
						ropePairsGeneric(want, cs, sn)
					}
					check()
					for i := range out {
						if d := math.Abs(float64(out[i] - want[i])); d > 1e-6*amax {
							t.Fatalf("neox=%v: RoPE element %d = %g, generic %g", neox, i, out[i], want[i])
						}
					}
				}
			})
		}
	})
}

func bitsEqual(a, b []float32) bool {
	return slices.EqualFunc(a, b, func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) })
}
