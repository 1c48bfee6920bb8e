package bench

import (
	"strings"
	"testing"
)

func TestFitsContext(t *testing.T) {
	for _, tt := range []struct {
		name               string
		fill, span         int
		contexts, canvases []int
		err                string // part of the error, "" for none
	}{
		{"all fit", 200, 32, []int{128, 224}, []int{32}, ""},
		{"the fill does not", 256, 32, []int{128}, []int{32}, "--context 256 + --span 32 = 288 tokens, more than the model's context of 256"},
		{"a step canvas does not", 128, 32, []int{128, 512}, []int{32}, "--contexts 512 + --canvases 32 = 544 tokens"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := fitsContext("m", 256, tt.fill, tt.span, tt.contexts, tt.canvases)
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Errorf("fitsContext = %v, want %q", err, tt.err)
			}
		})
	}
}
