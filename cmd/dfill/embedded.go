package main

import _ "embed"

// embeddedGGUF is dfill's own model, trained on the Go standard library;
// model/MODEL.md says how it was made and what it can do.
//
//go:embed model/dfill-go.gguf
var embeddedGGUF []byte

// embeddedModel returns the model compiled into the binary and its name.
func embeddedModel() ([]byte, string) { return embeddedGGUF, "dfill-go.gguf (embedded)" }
