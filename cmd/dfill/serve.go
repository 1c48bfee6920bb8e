package main

import (
	"context"
	"errors"
)

func init() {
	register("serve", "LSP server over stdio (the default when stdin is not a terminal)", runServe)
}

func runServe(ctx context.Context, args []string) error {
	return errors.New("not implemented yet")
}
