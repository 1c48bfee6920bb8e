package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// vscodeClientDir holds the script that speaks to dfill serve with VS Code's
// own protocol library (vscode-languageserver-protocol from npm).
var vscodeClientDir = filepath.Join("testdata", "vscode-client")

// TestVSCodeProtocolClient runs testdata/vscode-client/vscode-client.js
// against the built binary: VS Code's client capabilities, a burst of
// typing with an inline completion and a completion per keystroke, and
// checks that every answer has its LSP 3.18 type and that no request the
// client still waits for is cancelled by the server.
func TestVSCodeProtocolClient(t *testing.T) {
	node, errNode := exec.LookPath("node")
	npm, errNpm := exec.LookPath("npm")
	if errNode != nil || errNpm != nil {
		const msg = "node and npm are needed to speak to dfill serve with VS Code's protocol library: install nodejs and npm (apt-get install nodejs npm; CI installs them)"
		if testing.Short() {
			t.Skip(msg)
		}
		t.Fatal(msg)
	}
	if testing.Short() {
		t.Skip("builds dfill and runs it under VS Code's protocol library")
	}
	bin, err := buildDfill()
	if err != nil {
		t.Fatal(err)
	}
	if stale, why := vscodeModulesStale(); stale {
		t.Logf("npm ci in %s: %s", vscodeClientDir, why)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, npm, "ci", "--prefer-offline", "--no-audit", "--no-fund")
		cmd.Dir = vscodeClientDir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in %s: %v\n%s", vscodeClientDir, err, out)
		}
	}

	artifacts := os.Getenv("ARTIFACTS")
	if artifacts == "" {
		artifacts = t.TempDir()
	} else {
		artifacts = filepath.Join(artifacts, "vscode-client")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "vscode-client.js")
	cmd.Dir = vscodeClientDir
	cmd.Env = append(os.Environ(), "DFILL="+bin, "ARTIFACTS="+artifacts)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node vscode-client.js: %v\n%s", err, out)
	}
	t.Logf("node vscode-client.js:\n%s", out)
}

// vscodeModulesStale reports whether node_modules must be installed: it is
// missing, or older than the lockfile (npm writes node_modules/.package-lock.json
// on each install).
func vscodeModulesStale() (bool, string) {
	lock, err := os.Stat(filepath.Join(vscodeClientDir, "package-lock.json"))
	if err != nil {
		return true, err.Error()
	}
	installed, err := os.Stat(filepath.Join(vscodeClientDir, "node_modules", ".package-lock.json"))
	if err != nil {
		return true, "node_modules is missing"
	}
	if installed.ModTime().Before(lock.ModTime()) {
		return true, "node_modules is older than package-lock.json"
	}
	return false, ""
}
