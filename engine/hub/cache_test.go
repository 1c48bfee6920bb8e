package hub

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestCacheDir(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"HF_HUB_CACHE first", map[string]string{"HF_HUB_CACHE": "/h/hub", "HF_HOME": "/h", "XDG_CACHE_HOME": "/x"}, "/h/hub"},
		{"HF_HOME's hub", map[string]string{"HF_HOME": "/h", "XDG_CACHE_HOME": "/x"}, filepath.Join("/h", "hub")},
		{"XDG_CACHE_HOME's dfill", map[string]string{"XDG_CACHE_HOME": "/x"}, filepath.Join("/x", "dfill")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CacheDir(func(k string) string { return tt.env[k] })
			if err != nil || got != tt.want {
				t.Errorf("CacheDir = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestCacheListResolveRemove pulls two files, then lists, resolves without
// the network and removes them one by one.
func TestCacheListResolveRemove(t *testing.T) {
	h := newFakeHub(t)
	files := h.add(repo, false, pullFiles)
	c := h.client(t)
	for _, q := range []string{"Q4_K_M", "Q8_0"} {
		if _, err := c.Pull(context.Background(), Ref{Repo: repo, Quant: q}, nil); err != nil {
			t.Fatal(err)
		}
	}
	h.api.Close() // from here on, no network
	cache := c.Cache

	list, err := cache.List()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range list {
		got = append(got, f.Repo+" "+f.File+" "+f.Quant)
		if f.Size != int64(len(files[f.File])) || !strings.HasSuffix(f.Blob, sha(files[f.File])) {
			t.Errorf("%s: size %d, blob %s; want %d bytes in blob %s", f.File, f.Size, f.Blob, len(files[f.File]), sha(files[f.File]))
		}
	}
	if want := []string{repo + " coder.Q4_K_M.gguf Q4_K_M", repo + " coder.Q8_0.gguf Q8_0"}; !slices.Equal(got, want) {
		t.Errorf("List = %q, want %q", got, want)
	}

	for _, tt := range []struct {
		ref  Ref
		want string
	}{
		{Ref{Repo: repo}, "coder.Q4_K_M.gguf"},
		{Ref{Repo: repo, Quant: "q8_0"}, "coder.Q8_0.gguf"},
		{Ref{Repo: repo, File: "coder.Q8_0.gguf"}, "coder.Q8_0.gguf"},
	} {
		p, err := cache.Resolve(tt.ref)
		if err != nil || filepath.Base(p) != tt.want {
			t.Errorf("Resolve(%s) = %q, %v; want .../%s", tt.ref, p, err, tt.want)
		}
	}
	if _, err := cache.Resolve(Ref{Repo: repo, Quant: "Q6_K"}); !errors.Is(err, ErrNotCached) {
		t.Errorf("Resolve of a quantization not pulled = %v, want ErrNotCached", err)
	}
	if _, err := cache.Resolve(Ref{Repo: "other/repo"}); !errors.Is(err, ErrNotCached) {
		t.Errorf("Resolve of a repository not pulled = %v, want ErrNotCached", err)
	}

	removed, err := cache.Remove(Ref{Repo: repo, Quant: "Q8_0"})
	if err != nil || len(removed) != 1 || removed[0].File != "coder.Q8_0.gguf" {
		t.Fatalf("Remove Q8_0 = %+v, %v", removed, err)
	}
	if exists(removed[0].Blob) || exists(removed[0].Path) {
		t.Errorf("Remove left %s or %s", removed[0].Blob, removed[0].Path)
	}
	if p, err := cache.Resolve(Ref{Repo: repo}); err != nil || filepath.Base(p) != "coder.Q4_K_M.gguf" {
		t.Errorf("after removing Q8_0, Resolve = %q, %v; want the Q4_K_M", p, err)
	}
	if removed, err := cache.Remove(Ref{Repo: repo}); err != nil || len(removed) != 1 {
		t.Fatalf("Remove of the repository = %+v, %v", removed, err)
	}
	if left := filesUnder(t, cache.Root); len(left) != 0 {
		t.Errorf("files left after removing everything: %v", left)
	}
	if _, err := cache.Remove(Ref{Repo: repo}); !errors.Is(err, ErrNotCached) {
		t.Errorf("second Remove = %v, want ErrNotCached", err)
	}
}

// TestCacheOtherTools reads caches as huggingface_hub and llama.cpp leave
// them: links into blobs, and files moved into the snapshot where links
// could not be made; a snapshot other than main's is a fallback, and a
// dangling link is skipped.
func TestCacheOtherTools(t *testing.T) {
	root := t.TempDir()
	const commit, older = "1111111111111111111111111111111111111111", "0000000000000000000000000000000000000000"
	write := func(p, s string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, p string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	hf := filepath.Join(root, "models--org--hf-GGUF")
	write(filepath.Join(hf, "refs", "main"), commit)
	write(filepath.Join(hf, "blobs", "aaaa"), "q4 bytes")
	link("../../blobs/aaaa", filepath.Join(hf, "snapshots", commit, "m.Q4_K_M.gguf"))
	link("../../blobs/gone", filepath.Join(hf, "snapshots", commit, "m.Q8_0.gguf"))
	write(filepath.Join(hf, "blobs", "bbbb"), "older q6")
	link("../../blobs/bbbb", filepath.Join(hf, "snapshots", older, "m.Q6_K.gguf"))
	write(filepath.Join(hf, "snapshots", commit, "config.json"), "{}")
	degraded := filepath.Join(root, "models--org--moved-GGUF")
	write(filepath.Join(degraded, "refs", "main"), commit)
	write(filepath.Join(degraded, "snapshots", commit, "sub", "m-Q8_0.gguf"), "moved q8")
	write(filepath.Join(root, "datasets--org--data", "snapshots", commit, "x.gguf"), "not a model")

	c := &Cache{Root: root}
	list, err := c.List()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range list {
		got = append(got, f.Repo+"/"+f.File)
	}
	if want := []string{"org/hf-GGUF/m.Q4_K_M.gguf", "org/hf-GGUF/m.Q6_K.gguf", "org/moved-GGUF/sub/m-Q8_0.gguf"}; !slices.Equal(got, want) {
		t.Errorf("List = %q, want %q", got, want)
	}
	for _, tt := range []struct {
		ref  string
		want string
		err  error
	}{
		{"org/hf-GGUF", filepath.Join(hf, "snapshots", commit, "m.Q4_K_M.gguf"), nil},
		{"org/hf-GGUF:Q6_K", filepath.Join(hf, "snapshots", older, "m.Q6_K.gguf"), nil},
		{"org/hf-GGUF:Q8_0", "", ErrNotCached},
		{"org/moved-GGUF", filepath.Join(degraded, "snapshots", commit, "sub", "m-Q8_0.gguf"), nil},
	} {
		ref, _ := ParseRef(tt.ref)
		p, err := c.Resolve(ref)
		if p != tt.want || !errors.Is(err, tt.err) {
			t.Errorf("Resolve(%s) = %q, %v; want %q, %v", tt.ref, p, err, tt.want, tt.err)
		}
	}
	removed, err := c.Remove(Ref{Repo: "org/moved-GGUF"})
	if err != nil || len(removed) != 1 || exists(degraded) {
		t.Errorf("Remove of the moved file = %+v, %v; folder there: %v", removed, err, exists(degraded))
	}
	if removed, err := c.Remove(Ref{Repo: "org/hf-GGUF"}); err != nil || len(removed) != 2 {
		t.Errorf("Remove org/hf-GGUF = %+v, %v; want its two GGUFs", removed, err)
	}
	if !exists(filepath.Join(hf, "snapshots", commit, "config.json")) || exists(filepath.Join(hf, "blobs", "aaaa")) {
		t.Error("Remove of the GGUFs took another tool's file, or left a blob no snapshot uses")
	}
}
