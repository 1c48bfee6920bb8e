package kernel

import (
	"testing"

	"github.com/dfill/dfill/engine/gguf"
)

// FuzzDequantize feeds arbitrary bytes to every decoder: Dequantize must
// either return an error or fill dst, never panic, whatever the lengths and
// bytes (scales may be NaN or Inf; that is the file's business).
func FuzzDequantize(f *testing.F) {
	f.Add(uint8(gguf.TypeQ4_K), 256, make([]byte, 144))
	f.Add(uint8(gguf.TypeQ6_K), 256, make([]byte, 210))
	f.Add(uint8(gguf.TypeQ8_0), 64, make([]byte, 68))
	f.Add(uint8(gguf.TypeF16), 3, []byte{1, 2, 3, 4, 5, 6})
	f.Fuzz(func(t *testing.T, typ uint8, n int, src []byte) {
		if n < 0 || n > 1<<16 {
			return
		}
		t2 := gguf.Type(typ)
		dst := make([]float32, n)
		err := Dequantize(t2, src, dst)
		if size, serr := t2.RowSize(n); err == nil && (serr != nil || size != len(src)) {
			t.Fatalf("Dequantize(%s, %d bytes, %d elements) accepted a mismatch", t2, len(src), n)
		}
	})
}

// FuzzF16 checks that converting any float32 to a half and back lands on a
// half that converts to itself.
func FuzzF16(f *testing.F) {
	f.Add(float32(1.5))
	f.Add(float32(65519.9))
	f.Fuzz(func(t *testing.T, x float32) {
		h := F32ToF16(x)
		if F32ToF16(F16ToF32(h)) != h {
			t.Fatalf("half %#04x of %g does not round-trip", h, x)
		}
	})
}
