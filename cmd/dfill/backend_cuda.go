//go:build cuda

package main

import (
	"go.uber.org/zap"

	"github.com/dfill/dfill/cuda"
	"github.com/dfill/dfill/engine"
)

// cudaBuilt reports whether --backend cuda can run: this build has it.
func cudaBuilt() error { return nil }

// accelerate loads m's GGUF file onto GPU 0 and makes m's denoising run
// its forward passes there (engine.Model.Accelerate); the returned func
// releases the GPU model and device.
func accelerate(m *engine.Model, log *zap.Logger) (func(), error) {
	d, err := cuda.Open(0)
	if err != nil {
		return nil, err
	}
	gm, err := cuda.Load(d, m.File(), m.Name())
	if err != nil {
		d.Close()
		return nil, err
	}
	m.Accelerate(gm.Accelerator())
	info := d.Info()
	log.Info("model on the GPU", zap.String("model", m.Name()), zap.Any("device", info))
	return func() {
		m.Accelerate(nil)
		gm.Close()
		d.Close()
	}, nil
}
