package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/dfill/dfill/cmd/dfill/internal/cli"
	"github.com/dfill/dfill/engine/kernel"
)

// version is dfill's release version. Editor clients compare it with the
// oldest server they speak to; a release build may set it with
// -ldflags "-X main.version=...".
var version = "0.2.0"

func versionCommand() *cli.Command {
	var asJSON bool
	return &cli.Command{
		Name:    "version",
		Summary: "print dfill's version, commit, kernels and build tags (--json for JSON); also dfill --version",
		Flags:   func(fs *flag.FlagSet) { fs.BoolVar(&asJSON, "json", false, "print JSON") },
		Run:     func(context.Context, []string) error { return printVersion(currentBuild(), asJSON) },
	}
}

// buildInfo is what `dfill version --json` prints.
type buildInfo struct {
	Version  string `json:"version"`
	Go       string `json:"go"`
	Platform string `json:"platform"`
	Revision string `json:"revision,omitempty"` // the commit, when built in a checkout
	Modified bool   `json:"modified,omitempty"` // the checkout had changes
	// Kernels is the kernel set the CPU runs (engine/kernel.Variant):
	// avx512-vnni, avx512, avx2 or generic.
	Kernels string `json:"kernels"`
	// Tags are the build tags the binary was built with (blas, purego).
	Tags []string `json:"tags"`
}

// currentBuild describes this binary.
func currentBuild() buildInfo {
	b := buildInfo{Version: version, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH,
		Kernels: kernel.Variant(), Tags: []string{}}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Revision = s.Value
			case "vcs.modified":
				b.Modified = s.Value == "true"
			case "-tags":
				b.Tags = strings.Split(s.Value, ",")
			}
		}
	}
	return b
}

// printVersion prints b as "dfill VERSION (GO, PLATFORM[, REVISION];
// kernels KERNELS[; tags TAGS])", or as JSON.
func printVersion(b buildInfo, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(os.Stdout).Encode(b)
	}
	rev := ""
	if b.Revision != "" {
		rev = ", " + b.Revision[:min(len(b.Revision), 12)]
		if b.Modified {
			rev += "+dirty"
		}
	}
	tags := ""
	if len(b.Tags) > 0 {
		tags = "; tags " + strings.Join(b.Tags, ",")
	}
	fmt.Printf("dfill %s (%s, %s%s; kernels %s%s)\n", b.Version, b.Go, b.Platform, rev, b.Kernels, tags)
	return nil
}
