package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dfill/dfill/completion"
	"github.com/dfill/dfill/engine"
	"github.com/dfill/dfill/engine/gguf"
	"github.com/dfill/dfill/engine/hub"
)

// miniHub is the Hugging Face Hub on loopback, as much of it as a pull
// uses: GET /api/models/OWNER/REPO?blobs=true with each file's sha256,
// resolve URLs that redirect to a second host serving the bytes with Range,
// and a gated repository that answers 401 without its token. engine/hub's
// tests drive the failure modes in depth; this one serves the command.
type miniHub struct {
	api, cdn *httptest.Server
	files    map[string]map[string][]byte // repo → file → bytes
	gated    map[string]bool

	mu   sync.Mutex
	gets int // requests for file bytes
}

const miniCommit = "0123456789abcdef0123456789abcdef01234567"

// newMiniHub starts a hub serving files, the repositories in gated only
// with a token.
func newMiniHub(t *testing.T, files map[string]map[string][]byte, gated map[string]bool) *miniHub {
	t.Helper()
	h := &miniHub{files: files, gated: gated}
	h.cdn = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.gets++
		h.mu.Unlock()
		for _, files := range h.files {
			for name, b := range files {
				if r.URL.Path == "/"+hexSHA(b) && r.Header.Get("Authorization") == "" {
					http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
					return
				}
			}
		}
		http.Error(w, "no such blob", http.StatusForbidden)
	}))
	h.api = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if repo, ok := strings.CutPrefix(r.URL.Path, "/api/models/"); ok {
			files, found := h.files[repo]
			if !found {
				w.Header().Set("X-Error-Code", "RepoNotFound")
				http.Error(w, `{"error":"Repository not found"}`, http.StatusNotFound)
				return
			}
			type lfs struct {
				SHA256 string `json:"sha256"`
				Size   int    `json:"size"`
			}
			type sibling struct {
				Name string `json:"rfilename"`
				LFS  lfs    `json:"lfs"`
			}
			var sib []sibling
			for name, b := range files {
				sib = append(sib, sibling{name, lfs{hexSHA(b), len(b)}})
			}
			json.NewEncoder(w).Encode(map[string]any{"sha": miniCommit, "siblings": sib})
			return
		}
		parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 5) // OWNER REPO resolve COMMIT FILE
		if len(parts) != 5 || parts[3] != miniCommit {
			http.NotFound(w, r)
			return
		}
		repo := parts[0] + "/" + parts[1]
		if h.gated[repo] && r.Header.Get("Authorization") != "Bearer hf_minihub_token" {
			w.Header().Set("X-Error-Code", "GatedRepo")
			http.Error(w, `{"error":"Access to model `+repo+` is restricted."}`, http.StatusUnauthorized)
			return
		}
		b, ok := h.files[repo][parts[4]]
		if !ok {
			http.NotFound(w, r)
			return
		}
		http.Redirect(w, r, h.cdn.URL+"/"+hexSHA(b), http.StatusFound)
	}))
	t.Cleanup(h.api.Close)
	t.Cleanup(h.cdn.Close)
	return h
}

func hexSHA(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// tinyGGUF returns the bytes of a tiny random llada model.
func tinyGGUF(t *testing.T) []byte {
	t.Helper()
	spec := engine.Presets["tiny"]
	spec.Arch, spec.Type, spec.Seed = engine.ArchLLaDA, gguf.TypeQ8_0, 7
	var buf bytes.Buffer
	if err := engine.WriteRandom(&buf, spec); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// hubEnv points the environment at h and a fresh cache, and returns the
// cache folder.
func hubEnv(t *testing.T, h *miniHub) string {
	cache := t.TempDir()
	t.Setenv("HF_ENDPOINT", h.api.URL)
	t.Setenv("HF_HUB_CACHE", cache)
	t.Setenv("HF_HOME", "")
	t.Setenv("HF_TOKEN", "")
	// Not the token of a huggingface-cli login on the machine running the test.
	t.Setenv("HF_TOKEN_PATH", filepath.Join(cache, "no-token"))
	t.Setenv("HF_HUB_OFFLINE", "")
	return cache
}

// TestModelPullE2E runs the dfill binary's model pull, list, info, rm and
// catalog against the fake Hub through HF_ENDPOINT, as a user would.
func TestModelPullE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the dfill binary")
	}
	bin, err := buildDfill()
	if err != nil {
		t.Fatal(err)
	}
	model := tinyGGUF(t)
	h := newMiniHub(t, map[string]map[string][]byte{
		"owner/tiny-GGUF":  {"tiny.Q8_0.gguf": model, "README.md": []byte("# tiny")},
		"owner/gated-GGUF": {"gated.Q4_K_M.gguf": model},
	}, map[string]bool{"owner/gated-GGUF": true})
	cache := hubEnv(t, h)

	dfill := func(args ...string) (code int, stdout, stderr string) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "HF_ENDPOINT="+h.api.URL, "HF_HUB_CACHE="+cache, "HF_TOKEN=",
			"HF_TOKEN_PATH="+filepath.Join(cache, "no-token"), "HF_HUB_OFFLINE=")
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		cmd.Run()
		return cmd.ProcessState.ExitCode(), out.String(), errb.String()
	}

	code, out, errs := dfill("model", "pull", "owner/tiny-GGUF")
	path := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(path, filepath.Join(cache, "models--owner--tiny-GGUF", "snapshots", miniCommit)) {
		t.Fatalf("model pull: exit %d, stdout %q, stderr %q; want the snapshot path", code, out, errs)
	}
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, model) {
		t.Fatalf("%s: %d bytes, %v; want the model's %d", path, len(got), err, len(model))
	}
	if !strings.Contains(errs, "pulling owner/tiny-GGUF:   0%") || !strings.Contains(errs, "pulling owner/tiny-GGUF: 100%") {
		t.Errorf("model pull's stderr %q: want progress lines from 0%% to 100%%", errs)
	}
	if code, out, errs := dfill("model", "info", path, "--json"); code != 0 || !strings.Contains(out, `"arch": "llada"`) {
		t.Errorf("model info of the pulled file: exit %d, %q, %q", code, out, errs)
	}
	code, out, _ = dfill("model", "pull", "owner/tiny-GGUF:q8_0")
	h.mu.Lock()
	gets := h.gets
	h.mu.Unlock()
	if code != 0 || strings.TrimSpace(out) != path || gets != 1 {
		t.Errorf("second pull: exit %d, %q after %d downloads; want the same path, no new download", code, out, gets)
	}

	var list struct {
		Cache string
		Files []hub.CachedFile
	}
	code, out, _ = dfill("model", "list", "--json")
	if err := json.Unmarshal([]byte(out), &list); code != 0 || err != nil || list.Cache != cache ||
		len(list.Files) != 1 || list.Files[0].Size != int64(len(model)) || list.Files[0].Quant != "Q8_0" {
		t.Errorf("model list --json: exit %d, %q (%v)", code, out, err)
	}
	if code, out, _ := dfill("model", "list"); code != 0 || !strings.Contains(out, "owner/tiny-GGUF/tiny.Q8_0.gguf  Q8_0") {
		t.Errorf("model list: exit %d, %q", code, out)
	}

	for _, tt := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"a gated repository", []string{"model", "pull", "owner/gated-GGUF"}, 1, "set HF_TOKEN"},
		{"a repository not there", []string{"model", "pull", "owner/none-GGUF"}, 1, "repository owner/none-GGUF not found"},
		{"a quantization not there", []string{"model", "pull", "owner/tiny-GGUF:Q2_K"}, 1, "no GGUF file tagged Q2_K; its GGUF files: tiny.Q8_0.gguf"},
		{"not a reference", []string{"model", "pull", "no-such-model"}, 2, "not a catalog name"},
		{"a catalog model with no GGUF known", []string{"model", "pull", "open-dcoder-0.5b"}, 1, "no GGUF repository is known"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if code, _, errs := dfill(tt.args...); code != tt.code || !strings.Contains(errs, tt.stderr) {
				t.Errorf("dfill %q: exit %d, stderr %q; want %d and %q", tt.args, code, errs, tt.code, tt.stderr)
			}
		})
	}

	if code, out, errs := dfill("model", "rm", "owner/tiny-GGUF"); code != 0 || !strings.Contains(out, "removed owner/tiny-GGUF/tiny.Q8_0.gguf") {
		t.Errorf("model rm: exit %d, %q, %q", code, out, errs)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("%s after rm: %v", path, err)
	}
	if code, _, errs := dfill("model", "rm", "owner/tiny-GGUF"); code != 1 || !strings.Contains(errs, "not in the cache") {
		t.Errorf("second model rm: exit %d, %q", code, errs)
	}

	var catalog []hub.Model
	if code, out, _ := dfill("model", "catalog", "--json"); code != 0 || json.Unmarshal([]byte(out), &catalog) != nil || len(catalog) != len(hub.Catalog) {
		t.Errorf("model catalog --json: exit %d, %d entries of %q", code, len(catalog), out)
	}
}

// TestResolveModel resolves each kind of --model value: a file, a cached
// reference (with the Hub gone), a reference to pull, a missing path.
func TestResolveModel(t *testing.T) {
	model := tinyGGUF(t)
	h := newMiniHub(t, map[string]map[string][]byte{"owner/tiny-GGUF": {"tiny.Q8_0.gguf": model}}, nil)
	cache := hubEnv(t, h)
	ctx := context.Background()

	local := filepath.Join(t.TempDir(), "local.gguf")
	if err := os.WriteFile(local, model, 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := resolveModel(ctx, local, nil); err != nil || got != local {
		t.Errorf("resolveModel(a file) = %q, %v; want it unchanged", got, err)
	}

	var calls int
	pulled, err := resolveModel(ctx, "owner/tiny-GGUF", func(done, total int64) { calls++ })
	if err != nil || !strings.HasPrefix(pulled, cache) || calls == 0 {
		t.Fatalf("resolveModel(not cached) = %q, %v after %d progress calls; want a pull into %s", pulled, err, calls, cache)
	}
	m, err := engine.Load(pulled, engine.LoadOptions{Threads: 1})
	if err != nil {
		t.Fatalf("loading the pulled model: %v", err)
	}
	m.Close()

	h.api.Close()
	h.cdn.Close()
	if got, err := resolveModel(ctx, "owner/tiny-GGUF:Q8_0", nil); err != nil || got != pulled {
		t.Errorf("resolveModel(cached, Hub gone) = %q, %v; want %q", got, err, pulled)
	}
	for _, missing := range []string{"./missing.gguf", filepath.Join(t.TempDir(), "missing.gguf"), "models/missing.gguf"} {
		if _, err := resolveModel(ctx, missing, nil); err == nil || !strings.Contains(err.Error(), "no such file") {
			t.Errorf("resolveModel(%q) = %v; want no such file", missing, err)
		}
	}
}

// TestPullProgress checks what a pull shows: on a pipe, a line at the
// start (where a resumed download starts) and at each tenth; on a
// terminal, a bar with bytes that ends full.
func TestPullProgress(t *testing.T) {
	tests := []struct {
		name  string
		tty   bool
		calls [][2]int64
		want  []string
	}{
		{"pipe, from the start", false, [][2]int64{{0, 1000}, {50, 1000}, {100, 1000}, {150, 1000}, {999, 1000}, {1000, 1000}},
			[]string{"p:   0% (0 B of 1000 B)", "p:  10% (100 B of 1000 B)", "p:  90% (999 B of 1000 B)", "p: 100% (1000 B of 1000 B)"}},
		{"pipe, resumed at 47%", false, [][2]int64{{470, 1000}, {480, 1000}, {500, 1000}, {1000, 1000}},
			[]string{"p:  47% (470 B of 1000 B)", "p:  50% (500 B of 1000 B)", "p: 100% (1000 B of 1000 B)"}},
		{"terminal", true, [][2]int64{{0, 1 << 20}, {1 << 19, 1 << 20}, {1 << 20, 1 << 20}}, []string{"p", "100%", "1.0 MiB"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			progress := pullProgress(&buf, tt.tty, "p")
			for _, c := range tt.calls {
				progress(c[0], c[1])
			}
			if !tt.tty {
				if got := strings.Split(strings.TrimSpace(buf.String()), "\n"); strings.Join(got, "|") != strings.Join(tt.want, "|") {
					t.Errorf("lines %q, want %q", got, tt.want)
				}
				return
			}
			for _, s := range tt.want {
				if !strings.Contains(buf.String(), s) {
					t.Errorf("bar %q does not show %q", buf.String(), s)
				}
			}
		})
	}
}

// TestCatalogDefaultsParse checks that every catalog entry's sampler
// settings name a schedule and a score the engine has.
func TestCatalogDefaultsParse(t *testing.T) {
	for _, m := range hub.Catalog {
		t.Run(m.Name, func(t *testing.T) {
			d := m.Defaults
			if d.Schedule != "" {
				if _, err := engine.ParseSchedule(d.Schedule); err != nil {
					t.Error(err)
				}
			}
			if d.Score != "" {
				if _, err := engine.ParseScore(d.Score); err != nil {
					t.Error(err)
				}
			}
			if d.Temperature < 0 || d.TopP < 0 || d.TopP > 1 || d.Steps < 0 || d.BlockLength < 0 {
				t.Errorf("defaults %+v out of range", d)
			}
			var buf bytes.Buffer
			if err := modelCatalog(&buf, false); err != nil || !strings.Contains(buf.String(), m.Name+"  "+m.Title) {
				t.Errorf("model catalog does not list %s: %v", m.Name, err)
			}
		})
	}
}

// TestServePullsModelE2E starts dfill serve whose settings name a model on
// the (fake) Hub: it pulls it, reporting the download in the load's
// $/progress, and completes with it; a reference that does not exist is
// shown to the user, and the server keeps serving with the model it had.
func TestServePullsModelE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the dfill binary")
	}
	h := newMiniHub(t, map[string]map[string][]byte{"owner/tiny-GGUF": {"tiny.Q8_0.gguf": tinyGGUF(t)}}, nil)
	cache := hubEnv(t, h)
	p := startServe(t)
	p.initializeWith(t, map[string]any{"model": "owner/tiny-GGUF:Q8_0"})
	p.waitModel(t, "")
	// The load's progress: begin, the download's reports, end.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		p.mu.Lock()
		notes := slices.Clone(p.notes["$/progress"])
		p.mu.Unlock()
		var all []string
		for _, n := range notes {
			all = append(all, string(n))
		}
		joined := strings.Join(all, "\n")
		if strings.Contains(joined, `"end"`) {
			if !strings.Contains(joined, `"report"`) || !strings.Contains(joined, "downloading owner/tiny-GGUF:Q8_0") {
				t.Errorf("the load's progress has no download report: %s", joined)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no end of the load's progress: %s", joined)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(cache, "models--owner--tiny-GGUF", "snapshots", "*", "tiny.Q8_0.gguf")); len(m) != 1 {
		t.Errorf("the pulled file is not in the cache: %v", m)
	}

	p.notify(t, "workspace/didChangeConfiguration", map[string]any{"settings": map[string]any{"dfill": map[string]any{"model": "owner/missing-GGUF"}}})
	msg := p.waitNote(t, "window/showMessage")
	if !strings.Contains(string(msg), "owner/missing-GGUF") {
		t.Errorf("showMessage %s, want it to name the reference", msg)
	}
	if err := p.call(t, "shutdown", nil, nil); err != nil {
		t.Fatal(err)
	}
	p.notify(t, "exit", nil)
	if code := p.wait(t); code != 0 {
		t.Errorf("exit status %d", code)
	}
}

// TestCatalogDefaultsApply checks that a catalog model's sampler settings
// become the engine's options where the request leaves them to the
// default, and that what the request sets wins.
func TestCatalogDefaultsApply(t *testing.T) {
	d, ok := catalogDefaults("llada-8b")
	if !ok {
		t.Fatal("no catalog defaults for llada-8b")
	}
	if _, ok := catalogDefaults("/models/some.gguf"); ok {
		t.Error("a path has catalog defaults")
	}
	base, err := engineOptions(completion.GenerateOptions{MaxTokens: 32})
	if err != nil {
		t.Fatal(err)
	}
	got, err := withDefaults(base, completion.GenerateOptions{MaxTokens: 32}, d)
	if err != nil {
		t.Fatal(err)
	}
	wantSched, _ := engine.ParseSchedule(d.Schedule)
	if got.Steps != d.Steps || got.Schedule != wantSched || got.BlockSize != d.BlockLength || got.Temperature != d.Temperature {
		t.Errorf("options %+v, want the catalog's %+v", got, d)
	}
	set := completion.GenerateOptions{MaxTokens: 32, Steps: 5, Threshold: 0.8, Algorithm: "margin"}
	base, _ = engineOptions(set)
	got, err = withDefaults(base, set, d)
	if err != nil {
		t.Fatal(err)
	}
	if got.Steps != 5 || got.Schedule != engine.ScheduleThreshold || got.Threshold != 0.8 || got.Score != engine.ScoreMargin {
		t.Errorf("options %+v: the request's settings must win", got)
	}
}
