package main

// embeddedModel returns the model compiled into the binary and its name, or
// nil when this build carries none.
func embeddedModel() ([]byte, string) { return nil, "" }
