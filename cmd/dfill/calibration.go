package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"

	"github.com/dfill/dfill/completion"
	"github.com/dfill/dfill/engine/gguf"
)

// GGUF metadata keys of a model's score calibration (completion.Calibration),
// written by `dfill model calibrate`.
const (
	calibrationFeaturesKey  = "dfill.score.features"  // completion.FeatureNames when fitted
	calibrationWeightsKey   = "dfill.score.weights"   // a weight per feature, then the bias
	calibrationThresholdKey = "dfill.score.threshold" // the default least score shown
)

// readCalibration returns the score calibration f carries; ok is false when
// it has none. A calibration fitted on other features than this build's
// (completion.FeatureNames) is an error, and must be fitted again.
func readCalibration(f *gguf.File) (cal completion.Calibration, ok bool, err error) {
	names, hasNames := f.Strings(calibrationFeaturesKey)
	weights, hasWeights := f.Float32s(calibrationWeightsKey)
	threshold, hasThreshold := f.Float(calibrationThresholdKey)
	if !hasNames && !hasWeights && !hasThreshold {
		return completion.Calibration{}, false, nil
	}
	if !hasNames || !hasWeights || !hasThreshold {
		return completion.Calibration{}, false, fmt.Errorf("%s, %s and %s must all be set", calibrationFeaturesKey, calibrationWeightsKey, calibrationThresholdKey)
	}
	if !slices.Equal(names, completion.FeatureNames) {
		return completion.Calibration{}, false, fmt.Errorf("%s is %v; this build scores %v: run `dfill model calibrate` again", calibrationFeaturesKey, names, completion.FeatureNames)
	}
	cal.Threshold = threshold
	for _, w := range weights {
		cal.Weights = append(cal.Weights, float64(w))
	}
	if err := cal.Check(); err != nil {
		return completion.Calibration{}, false, err
	}
	return cal, true, nil
}

// writeCalibrated writes the GGUF model in (a file, or the embedded model
// when "") to out with cal as its score calibration, replacing any it had.
func writeCalibrated(ctx context.Context, in, out string, cal completion.Calibration) error {
	data, _ := embeddedModel()
	if in != "" {
		var err error
		if data, err = os.ReadFile(in); err != nil {
			return err
		}
	}
	f, err := gguf.Parse(data)
	if err != nil {
		return err
	}
	meta := slices.DeleteFunc(slices.Clone(f.Metadata), func(kv gguf.KV) bool {
		return kv.Key == calibrationFeaturesKey || kv.Key == calibrationWeightsKey || kv.Key == calibrationThresholdKey
	})
	weights := make([]float32, len(cal.Weights))
	for i, w := range cal.Weights {
		weights[i] = float32(w)
	}
	meta = append(meta,
		gguf.KV{Key: calibrationFeaturesKey, Value: gguf.Val(completion.FeatureNames)},
		gguf.KV{Key: calibrationWeightsKey, Value: gguf.Val(weights)},
		gguf.KV{Key: calibrationThresholdKey, Value: gguf.Val(float32(cal.Threshold))})
	tensors := make([]gguf.TensorData, len(f.Tensors))
	for i, t := range f.Tensors {
		tensors[i] = gguf.TensorData{Name: t.Name, Type: t.Type, Dims: t.Dims, Data: t.Data}
	}
	var buf bytes.Buffer
	if err := gguf.Write(&buf, meta, tensors); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	tmp := out + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}
