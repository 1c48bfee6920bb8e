package kernel

import (
	"fmt"
	"math"
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
