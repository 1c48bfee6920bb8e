package main

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dfill/dfill/completion"
	"github.com/dfill/dfill/engine/gguf"
)

// TestCalibrationRoundTrip writes the embedded model with a calibration
// and reads it back: the weights (as float32), the threshold and the
// tensors are kept; a file without one has none, and one fitted on other
// features is refused.
func TestCalibrationRoundTrip(t *testing.T) {
	w := make([]float64, len(completion.FeatureNames)+1)
	for i := range w {
		w[i] = float64(i) - 2.5
	}
	want := completion.Calibration{Weights: w, Threshold: 0.375}
	out := filepath.Join(t.TempDir(), "calibrated.gguf")
	if err := writeCalibrated(context.Background(), "", out, want); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, ok, err := readCalibration(f)
	if err != nil || !ok || got.Threshold != want.Threshold || len(got.Weights) != len(w) {
		t.Fatalf("readCalibration = %+v, %v, %v; want %+v", got, ok, err, want)
	}
	for i := range w {
		if math.Abs(got.Weights[i]-w[i]) > 1e-6 {
			t.Errorf("weight %d = %v, want %v", i, got.Weights[i], w[i])
		}
	}
	data, _ := embeddedModel()
	orig, err := gguf.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Tensors) != len(orig.Tensors) || string(f.Tensors[0].Data) != string(orig.Tensors[0].Data) {
		t.Errorf("tensors changed: %d, want %d", len(f.Tensors), len(orig.Tensors))
	}

	// Writing again replaces the calibration rather than adding one.
	out2 := filepath.Join(t.TempDir(), "again.gguf")
	if err := writeCalibrated(context.Background(), out, out2, completion.Calibration{Weights: w, Threshold: 0.5}); err != nil {
		t.Fatal(err)
	}
	g, err := gguf.Open(out2)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if got, _, err := readCalibration(g); err != nil || got.Threshold != 0.5 {
		t.Errorf("recalibrated: %+v, %v", got, err)
	}

	other := &gguf.File{Metadata: []gguf.KV{
		{Key: calibrationFeaturesKey, Value: gguf.Val([]string{"mean_prob"})},
		{Key: calibrationWeightsKey, Value: gguf.Val([]float32{1, 0})},
		{Key: calibrationThresholdKey, Value: gguf.Val(float32(0.5))},
	}}
	if _, _, err := readCalibration(reparse(t, other)); err == nil || !strings.Contains(err.Error(), "calibrate") {
		t.Errorf("a calibration of other features: %v, want an error that says to calibrate again", err)
	}
	if _, ok, err := readCalibration(reparse(t, &gguf.File{})); ok || err != nil {
		t.Errorf("no calibration: ok %v, %v", ok, err)
	}
}

// reparse writes f's metadata (no tensors) and parses it, so that its
// lookups work.
func reparse(t *testing.T, f *gguf.File) *gguf.File {
	t.Helper()
	var b strings.Builder
	if err := gguf.Write(&b, f.Metadata, nil); err != nil {
		t.Fatal(err)
	}
	g, err := gguf.Parse([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return g
}
