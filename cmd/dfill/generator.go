package main

import (
	"context"
	"errors"

	"go.uber.org/zap"

	"github.com/dfill/dfill/completion"
)

// generatorConfig says which model to load and how to run it.
type generatorConfig struct {
	Model   string // GGUF path; empty means the embedded model
	Backend string // cpu, cuda or remote
	Threads int
}

// newGenerator loads the model cfg names and returns it as the completion
// pipeline's Generator. The caller closes it with closeGenerator.
func newGenerator(ctx context.Context, cfg generatorConfig, log *zap.Logger) (completion.Generator, error) {
	return nil, errors.New("engine: not wired yet")
}

// closeGenerator releases what newGenerator holds (model mappings, threads).
func closeGenerator(g completion.Generator) {}
