package gguf

import "errors"

// ErrUnknownType is returned for a tensor type dfill cannot read.
var ErrUnknownType = errors.New("gguf: unknown tensor type")
