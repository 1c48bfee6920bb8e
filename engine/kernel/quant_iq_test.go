package kernel

import (
	"encoding/binary"
	"testing"

	"github.com/dfill/dfill/engine/gguf"
)

// iq4Levels is ggml-common.h's kvalues_iq4nl, written out again.
var iq4Levels = [16]float32{-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}

// TestIQLayouts checks IQ4_NL and IQ4_XS bit for bit against ggml's
// dequantize_row_iq4_nl and iq4_xs formulas.
func TestIQLayouts(t *testing.T) {
	checkLayouts(t, []layoutCase{
		// block_iq4_nl: d, qs[16], as Q4_0 but x = d·kvalues[q].
		{"IQ4_NL", gguf.TypeIQ4_NL, []int{0}, func(b []byte, k int) float32 {
			return half(b, 0) * iq4Levels[nibble32(b[2:], k)]
		}},
		// block_iq4_xs: d, scales_h (u16), scales_l[4], qs[128]. Sub-block
		// j = k/32 takes 16 bytes of qs as IQ4_NL does; its 6-bit scale has
		// the low 4 bits in nibble j%2 of scales_l[j/2] and the high 2 at
		// bit 2j of scales_h; x = d·(scale−32)·kvalues[q].
		{"IQ4_XS", gguf.TypeIQ4_XS, []int{0}, func(b []byte, k int) float32 {
			j := k / 32
			s := int(b[4+j/2]>>(4*(j%2))&0xf) | int(binary.LittleEndian.Uint16(b[2:])>>(2*j)&3)<<4
			dl := half(b, 0) * float32(s-32)
			return dl * iq4Levels[nibble32(b[8+16*j:], k%32)]
		}},
	})
}
