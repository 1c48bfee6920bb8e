package engine

import "errors"

// Sentinel errors; each is wrapped with the details of what was wrong.
var (
	// ErrUnsupportedArch is returned for a general.architecture dfill cannot run.
	ErrUnsupportedArch = errors.New("engine: unsupported architecture")
	// ErrBadModel is returned when a model file is missing a key or tensor, or
	// holds one of the wrong shape or type.
	ErrBadModel = errors.New("engine: bad model")
	// ErrBadOptions is returned for infill options that cannot be honoured.
	ErrBadOptions = errors.New("engine: bad options")
)
