package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
)

// version is dfill's release version. Editor clients compare it with the
// oldest server they speak to; a release build may set it with
// -ldflags "-X main.version=...".
var version = "0.2.0"

func init() {
	register("version", "print dfill's version (--json for the build's details)", runVersion)
}

// buildInfo is what `dfill version --json` prints.
type buildInfo struct {
	Version  string `json:"version"`
	Go       string `json:"go"`
	Platform string `json:"platform"`
	Revision string `json:"revision,omitempty"`
	Modified bool   `json:"modified,omitempty"`
}

// currentBuild describes this binary.
func currentBuild() buildInfo {
	b := buildInfo{Version: version, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Revision = s.Value
			case "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
	}
	return b
}

// runVersion prints "dfill VERSION (GO, PLATFORM[, REVISION])", or JSON.
func runVersion(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	b := currentBuild()
	if *asJSON {
		return json.NewEncoder(os.Stdout).Encode(b)
	}
	extra := ""
	if b.Revision != "" {
		rev := b.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if b.Modified {
			rev += "+dirty"
		}
		extra = ", " + rev
	}
	fmt.Printf("dfill %s (%s, %s%s)\n", b.Version, b.Go, b.Platform, extra)
	return nil
}
