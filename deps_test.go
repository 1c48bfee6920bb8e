package dfill_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// allowed names, for every package of the module, the packages outside the
// standard library it may import: the package graph of DESIGN.md, written
// as an allowlist as the Go tree's go/build/deps_test.go writes its own. A
// new package adds its line; an import not listed fails the test. Paths
// are relative to the module; a trailing "/..." allows a tree.
var allowed = map[string][]string{
	// The inference engine: never the server, completion or prompts.
	"engine/gguf":      {"golang.org/x/sys/unix"},
	"engine/tokenizer": {"engine/gguf"},
	"engine/kernel":    {"engine/gguf", "golang.org/x/sys/cpu"},
	"engine":           {"engine/gguf", "engine/kernel", "engine/tokenizer"},
	"engine/train":     {"engine", "engine/gguf", "engine/kernel", "engine/tokenizer"},
	// Model references, the Hugging Face Hub client, the local cache, the
	// catalog of diffusion coders.
	"engine/hub": {"engine/gguf"},
	// Hugging Face checkpoints (safetensors, config.json, tokenizer.json)
	// to GGUF.
	"engine/convert": {"engine/gguf", "engine/kernel", "engine/tokenizer"},

	// Prompts are pure: the standard library's pure packages only (pure).
	"fim": {},
	// Tree-sitter parsing and validation, the language table of grammars.
	"completion/syntax": {"github.com/smacker/go-tree-sitter/..."},
	// The completion policy: never the engine or the protocol.
	"completion": {"fim", "completion/syntax", "go.uber.org/zap"},
	// The server: protocol types stop here; never the engine.
	"lsp": {"completion", "go.lsp.dev/jsonrpc2", "go.lsp.dev/protocol", "go.lsp.dev/uri", "go.uber.org/zap/..."},
	// dfill http: the engine as a service (FIM API, SSE, metrics, limits).
	"api": {"engine", "fim", "completion/syntax", "github.com/prometheus/client_golang/...", "go.uber.org/zap/..."},
	// Clients of served models (Mercury, OpenAI-style FIM, SGLang,
	// llama.cpp, another dfill): prompts in, candidates out.
	"remote": {"fim"},
	// The GPU backend (build tag cuda; cudaemu runs its kernels on the CPU
	// through cgo): the driver API, weights from the GGUF file.
	"cuda": {"engine", "engine/gguf", "engine/kernel", "gorgonia.org/cu"},

	// The command and its wiring: everything below.
	"cmd/dfill/internal/cli": {"go.uber.org/zap/..."},
	"cmd/dfill/internal/bench": {"cmd/dfill/internal/cli", "completion", "completion/syntax", "engine", "engine/gguf",
		"engine/kernel", "fim", "lsp", "go.lsp.dev/jsonrpc2", "go.lsp.dev/protocol", "go.lsp.dev/uri", "go.uber.org/zap"},
	"cmd/dfill": {"api", "cmd/dfill/internal/bench", "cmd/dfill/internal/cli", "completion", "engine", "engine/gguf",
		"engine/convert", "engine/hub", "engine/kernel", "engine/tokenizer", "engine/train", "fim", "lsp", "remote", "cuda",
		"github.com/schollz/progressbar/v3", "go.uber.org/zap/...", "golang.org/x/term"},

	"": {}, // this file's package
}

// pure lists the standard library packages that do input and output; the
// packages named in it may import none of them.
var pure = map[string][]string{
	"fim": {"os", "os/exec", "net", "net/http", "io/fs", "syscall", "unsafe", "C"},
}

// TestImportDirection checks every package's imports against allowed, with
// each build tag that changes them.
func TestImportDirection(t *testing.T) {
	const mod = "github.com/dfill/dfill"
	std := map[string]bool{"C": false}
	out, err := exec.Command("go", "list", "std").Output()
	if err != nil {
		t.Fatalf("go list std: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		std[p] = true
	}
	for _, tags := range []string{"", "purego", "blas", "cuda", "cudaemu"} {
		out, err := exec.Command("go", "list", "-tags", tags, "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "./...").Output()
		if err != nil {
			t.Fatalf("go list -tags %q: %v", tags, err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			fields := strings.Fields(line)
			pkg := strings.TrimPrefix(strings.TrimPrefix(fields[0], mod), "/")
			allow, ok := allowed[pkg]
			if !ok {
				t.Errorf("package %q has no line in deps_test.go's allowlist", pkg)
				continue
			}
			for _, imp := range fields[1:] {
				if slices.Contains(pure[pkg], imp) {
					t.Errorf("%s (pure) imports %s", pkg, imp)
				}
				if std[imp] || imp == "C" && (pkg == "cmd/dfill/internal/bench" || pkg == "cuda") {
					continue // bench links OpenBLAS through cgo with -tags blas; cuda's emulation is C++
				}
				rel := strings.TrimPrefix(strings.TrimPrefix(imp, mod), "/")
				if !slices.ContainsFunc(allow, func(a string) bool { return matches(a, rel) }) {
					t.Errorf("%s imports %s, which deps_test.go does not allow (tags %q)", pkg, imp, tags)
				}
			}
		}
	}
}

// matches reports whether the allowlist entry a allows the import path p.
func matches(a, p string) bool {
	if tree, ok := strings.CutSuffix(a, "/..."); ok {
		return p == tree || strings.HasPrefix(p, tree+"/")
	}
	return a == p
}
