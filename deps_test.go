package dfill_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportDirection keeps the package graph of DESIGN.md: the engine
// never sees the server, completion never sees the engine or the protocol,
// fim needs nothing but the standard library.
func TestImportDirection(t *testing.T) {
	const mod = "github.com/dfill/dfill/"
	forbidden := map[string][]string{
		"engine/...":        {mod + "lsp", mod + "completion", mod + "fim", mod + "cuda", "go.lsp.dev/"},
		"completion/...":    {mod + "engine", mod + "lsp", "go.lsp.dev/"},
		"fim":               {mod, "go.lsp.dev/", "github.com/smacker/", "go.uber.org/"},
		"lsp":               {mod + "engine", mod + "cuda"},
		"completion/syntax": {mod + "completion\n", mod + "fim"},
	}
	for pkg, bad := range forbidden {
		out, err := exec.Command("go", "list", "-deps", "./"+pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps ./%s: %v", pkg, err)
		}
		for _, dep := range strings.Split(string(out), "\n") {
			for _, b := range bad {
				if strings.HasPrefix(dep+"\n", b) && !strings.HasPrefix(dep, mod+pkg) {
					t.Errorf("%s imports %s", pkg, dep)
				}
			}
		}
	}
}
