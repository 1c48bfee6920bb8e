package hub

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const repo = "owner/coder-GGUF"

// pullFiles are the files of the test repository: two quantizations, a
// projector that is never picked, and files of a few hundred KiB.
var pullFiles = map[string]int{
	"coder.Q8_0.gguf":   200 << 10,
	"coder.Q4_K_M.gguf": 300 << 10,
	"mmproj-coder.gguf": 1000,
}

// TestPull pulls through the fake hub in the ways a download goes right and
// wrong, and checks what the user gets: the file's exact bytes at the path
// returned, or an error that says what happened, with nothing unverified
// left in the cache.
func TestPull(t *testing.T) {
	const q4 = "coder.Q4_K_M.gguf"
	tests := []struct {
		name    string
		ref     string
		token   string
		gated   bool
		setup   func(h *fakeHub, c *Client)
		wantErr error
		errHas  []string
		check   func(t *testing.T, h *fakeHub, c *Client)
	}{
		{
			name: "redirect to a second host; the token stays with the Hub", ref: repo, token: "hf_test_secret_token", gated: true,
			check: func(t *testing.T, h *fakeHub, c *Client) {
				if len(h.cdnReqs) != 1 || h.cdnReqs[0].auth != "" {
					t.Errorf("CDN requests %+v: want one, without Authorization", h.cdnReqs)
				}
				for _, r := range h.apiReqs {
					if r.auth != "Bearer hf_test_secret_token" {
						t.Errorf("API request %s without the token: %q", r.path, r.auth)
					}
				}
			},
		},
		{
			name: "a connection cut mid-file is resumed with Range", ref: repo + ":q4_k_m",
			setup: func(h *fakeHub, c *Client) { h.cutAt, h.cuts = 100_000, 1 },
			check: func(t *testing.T, h *fakeHub, c *Client) {
				if len(h.cdnReqs) != 2 || h.cdnReqs[0].rng != "" || h.cdnReqs[1].rng != "bytes=100000-" {
					t.Errorf("CDN requests %+v: want a whole one, then one from byte 100000", h.cdnReqs)
				}
			},
		},
		{
			name: "a stalled connection is resumed", ref: repo,
			setup: func(h *fakeHub, c *Client) { h.stalls, c.StallTimeout = 1, 50*time.Millisecond },
			check: func(t *testing.T, h *fakeHub, c *Client) {
				if len(h.cdnReqs) != 2 || h.cdnReqs[1].rng != "bytes=153600-" {
					t.Errorf("CDN requests %+v: want a second one from byte 153600", h.cdnReqs)
				}
			},
		},
		{
			name: "a server that ignores Range sends the file again", ref: repo,
			setup: func(h *fakeHub, c *Client) {
				h.noRange = true
				leavePartial(t, c, h, q4, 1234)
			},
			check: func(t *testing.T, h *fakeHub, c *Client) {
				if len(h.cdnReqs) != 1 || h.cdnReqs[0].rng != "bytes=1234-" {
					t.Errorf("CDN requests %+v: want one, asking from byte 1234", h.cdnReqs)
				}
			},
		},
		{
			name: "a wrong checksum is an error and the file is never used", ref: repo,
			setup: func(h *fakeHub, c *Client) {
				h.repos[repo].listed[q4] = strings.Repeat("0", 64)
			},
			wantErr: ErrChecksum, errHas: []string{"sha256", strings.Repeat("0", 64), "deleted"},
			check: func(t *testing.T, h *fakeHub, c *Client) {
				if left := filesUnder(t, c.Cache.Root); len(left) != 0 {
					t.Errorf("files left in the cache: %v", left)
				}
			},
		},
		{
			name: "a gated repository without a token says to set HF_TOKEN", ref: repo, gated: true,
			wantErr: ErrUnauthorized, errHas: []string{"401", "GatedRepo", "set HF_TOKEN", repo},
		},
		{
			name: "a gated repository with a token it refuses", ref: repo, gated: true, token: "hf_wrong_token",
			wantErr: ErrUnauthorized, errHas: []string{"401", "refused the token in HF_TOKEN"},
		},
		{
			name: "a repository that does not exist", ref: "owner/nothing",
			wantErr: ErrNotFound, errHas: []string{"404", "repository owner/nothing not found", "/api/models/owner/nothing"},
		},
		{
			name: "a quantization the repository lacks names the files it has", ref: repo + ":Q6_K",
			wantErr: ErrNotFound, errHas: []string{"no GGUF file tagged Q6_K", "coder.Q4_K_M.gguf, coder.Q8_0.gguf"},
		},
		{
			name: "a file that the API lists but resolve does not find", ref: repo + "/coder.Q8_0.gguf",
			setup:   func(h *fakeHub, c *Client) { h.repos[repo].missing["coder.Q8_0.gguf"] = true },
			wantErr: ErrNotFound, errHas: []string{"404", "EntryNotFound", "file owner/coder-GGUF/coder.Q8_0.gguf not found"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newFakeHub(t)
			files := h.add(repo, tt.gated, pullFiles)
			c := h.client(t)
			c.Token = tt.token
			if tt.setup != nil {
				h.set(func(h *fakeHub) { tt.setup(h, c) })
			}
			ref, err := ParseRef(tt.ref)
			if err != nil {
				t.Fatal(err)
			}
			path, err := c.Pull(context.Background(), ref, nil)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Pull = %q, %v; want an error wrapping %v", path, err, tt.wantErr)
				}
				for _, s := range tt.errHas {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not say %q", err, s)
					}
				}
				for _, secret := range []string{"hf_test_secret_token", "hf_wrong_token", "cdnsecret"} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("error %q shows a credential", err)
					}
				}
			} else {
				if err != nil {
					t.Fatalf("Pull: %v", err)
				}
				wantFile(t, c, path, q4, files[q4])
			}
			if tt.check != nil {
				tt.check(t, h, c)
			}
		})
	}
}

// leavePartial leaves the first n bytes of file in the cache as an interrupted
// download would.
func leavePartial(t *testing.T, c *Client, h *fakeHub, file string, n int) {
	t.Helper()
	b := h.repos[repo].files[file]
	blob := c.Cache.blobPath(repo, sha(b))
	if err := os.MkdirAll(filepath.Dir(blob), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(blob+".incomplete", b[:n], 0o644); err != nil {
		t.Fatal(err)
	}
}

// wantFile checks that path is the snapshot entry of file in the cache,
// linked to its blob, and holds want; and that refs/main names the commit.
func wantFile(t *testing.T, c *Client, path, file string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes, %v; want the %d bytes of %s", path, len(got), err, len(want), file)
	}
	if filepath.Base(path) != file || !strings.Contains(path, filepath.Join("models--owner--coder-GGUF", "snapshots")) {
		t.Errorf("path %s: want models--owner--coder-GGUF/snapshots/COMMIT/%s", path, file)
	}
	target, err := os.Readlink(path)
	if err != nil || target != filepath.Join("..", "..", "blobs", sha(want)) {
		t.Errorf("%s links to %q (%v); want ../../blobs/%s", path, target, err, sha(want))
	}
	commit := filepath.Base(filepath.Dir(path))
	if main := c.Cache.mainCommit(repo); main != commit {
		t.Errorf("refs/main = %q, want %q", main, commit)
	}
	if left := filesUnder(t, filepath.Join(c.Cache.Root, ".locks")); len(left) != 0 {
		t.Errorf("locks left: %v", left)
	}
}

// filesUnder returns the files (not folders) under dir.
func filesUnder(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// TestPullResumesAnInterruptedRun pulls from a CDN that cuts every
// connection: the pull fails, keeping what it got; the next pull asks for
// the rest only, and the file is whole and verified.
func TestPullResumesAnInterruptedRun(t *testing.T) {
	h := newFakeHub(t)
	files := h.add(repo, false, pullFiles)
	h.set(func(h *fakeHub) { h.cutAt, h.cuts = 123_456, -1 })
	c := h.client(t)
	ref := Ref{Repo: repo, Quant: "Q8_0"}
	if _, err := c.Pull(context.Background(), ref, nil); err == nil || !strings.Contains(err.Error(), "resume from byte 123456") {
		t.Fatalf("Pull through a cutting CDN = %v; want an error that says the pull resumes from byte 123456", err)
	}
	incomplete := c.Cache.blobPath(repo, sha(files["coder.Q8_0.gguf"])) + ".incomplete"
	if st, err := os.Stat(incomplete); err != nil || st.Size() != 123_456 {
		t.Fatalf("%s: %v, %v; want the 123456 bytes received", incomplete, st, err)
	}

	h.set(func(h *fakeHub) { h.cuts, h.cdnReqs = 0, nil })
	var calls [][2]int64
	path, err := c.Pull(context.Background(), ref, func(done, total int64) { calls = append(calls, [2]int64{done, total}) })
	if err != nil {
		t.Fatal(err)
	}
	wantFile(t, c, path, "coder.Q8_0.gguf", files["coder.Q8_0.gguf"])
	if len(h.cdnReqs) != 1 || h.cdnReqs[0].rng != "bytes=123456-" {
		t.Errorf("CDN requests %+v: want one for the rest, from byte 123456", h.cdnReqs)
	}
	size := int64(200 << 10)
	if len(calls) < 2 || calls[0] != [2]int64{123_456, size} || calls[len(calls)-1] != [2]int64{size, size} {
		t.Errorf("progress calls %v: want from {123456 %d} to {%d %d}", calls, size, size, size)
	}
	if exists(incomplete) {
		t.Errorf("%s is still there", incomplete)
	}
}

// TestPullCached pulls a file twice, and a second quantization: the second
// pull of a file downloads nothing.
func TestPullCached(t *testing.T) {
	h := newFakeHub(t)
	h.add(repo, false, pullFiles)
	c := h.client(t)
	first, err := c.Pull(context.Background(), Ref{Repo: repo}, nil)
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.Pull(context.Background(), Ref{Repo: repo, Quant: "Q4_K_M"}, nil)
	if err != nil || again != first {
		t.Fatalf("second Pull = %q, %v; want %q", again, err, first)
	}
	if len(h.cdnReqs) != 1 {
		t.Errorf("CDN requests %+v: want the one of the first pull", h.cdnReqs)
	}
}

// TestConcurrentPulls runs two pulls of one file at once: both get it, and
// it is downloaded once, the second pull waiting on the first's lock.
func TestConcurrentPulls(t *testing.T) {
	h := newFakeHub(t)
	files := h.add(repo, false, pullFiles)
	c := h.client(t)
	var paths [2]string
	var errs [2]error
	done := make(chan int)
	for i := range 2 {
		go func() {
			paths[i], errs[i] = c.Pull(context.Background(), Ref{Repo: repo}, nil)
			done <- i
		}()
	}
	<-done
	<-done
	for i := range 2 {
		if errs[i] != nil {
			t.Fatalf("pull %d: %v", i, errs[i])
		}
		wantFile(t, c, paths[i], "coder.Q4_K_M.gguf", files["coder.Q4_K_M.gguf"])
	}
	if len(h.cdnReqs) != 1 {
		t.Errorf("CDN requests %+v: want one download for both pulls", h.cdnReqs)
	}
}

// TestLock checks the lock a pull takes: one held by a live process is
// waited for, one left by a dead process or with a stopped heartbeat is
// taken over.
func TestLock(t *testing.T) {
	host, _ := os.Hostname()
	dead := deadPID(t)
	old := time.Now().Add(-time.Hour)
	tests := []struct {
		name    string
		content string
		mtime   time.Time
		waits   bool
	}{
		{"held by this live process", "%d " + host, time.Now(), true},
		{"left by a process that is gone", "DEAD " + host, time.Now(), !canProbePID},
		{"from another host, heartbeat stopped an hour ago", "1 elsewhere.example", old, false},
		{"from another host, heartbeat fresh", "1 elsewhere.example", time.Now(), true},
		{"being written (no pid yet), fresh", "", time.Now(), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newFakeHub(t)
			files := h.add(repo, false, pullFiles)
			c := h.client(t)
			lock := c.Cache.lockPath(repo, sha(files["coder.Q4_K_M.gguf"]))
			content := strings.ReplaceAll(strings.ReplaceAll(tt.content, "%d", itoa(os.Getpid())), "DEAD", itoa(dead))
			if err := os.MkdirAll(filepath.Dir(lock), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(lock, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(lock, tt.mtime, tt.mtime); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			waited := false
			c.Logf = func(format string, args ...any) {
				if strings.Contains(format, "waiting for another pull") {
					waited = true
					cancel() // stop waiting: what matters is that it waited
				}
			}
			path, err := c.Pull(ctx, Ref{Repo: repo}, nil)
			if tt.waits {
				if !waited || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "waiting for the lock") {
					t.Fatalf("Pull = %q, %v (waited %v); want it to wait for the lock until cancelled", path, err, waited)
				}
				return
			}
			if err != nil || waited {
				t.Fatalf("Pull = %v (waited %v); want the stale lock taken over", err, waited)
			}
			wantFile(t, c, path, "coder.Q4_K_M.gguf", files["coder.Q4_K_M.gguf"])
		})
	}
}

// TestPullOffline: with HF_HUB_OFFLINE a cached file still resolves, and a
// missing one fails with ErrNotCached without asking the Hub.
func TestPullOffline(t *testing.T) {
	h := newFakeHub(t)
	h.add(repo, false, pullFiles)
	c := h.client(t)
	c.Offline = true
	_, err := c.Pull(context.Background(), Ref{Repo: repo}, nil)
	if !errors.Is(err, ErrNotCached) || !strings.Contains(err.Error(), "HF_HUB_OFFLINE") {
		t.Fatalf("offline Pull = %v, want ErrNotCached naming HF_HUB_OFFLINE", err)
	}
	if len(h.apiReqs)+len(h.cdnReqs) != 0 {
		t.Errorf("offline Pull asked the Hub: %+v %+v", h.apiReqs, h.cdnReqs)
	}
	c.Offline = false
	path, err := c.Pull(context.Background(), Ref{Repo: repo}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Offline = true
	if got, err := c.Cache.Resolve(Ref{Repo: repo}); err != nil || got != path {
		t.Errorf("offline Resolve = %q, %v; want %q", got, err, path)
	}
}

// TestNewClientToken finds the token as huggingface_hub does: HF_TOKEN,
// HF_TOKEN_PATH, HF_HOME/token, XDG_CACHE_HOME/huggingface/token,
// ~/.cache/huggingface/token; and reads HF_HUB_OFFLINE.
func TestNewClientToken(t *testing.T) {
	dir := t.TempDir()
	write := func(path, s string) string {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	write(filepath.Join(dir, "home", ".cache", "huggingface", "token"), "hf_home\n")
	write(filepath.Join(dir, "xdg", "huggingface", "token"), "hf_xdg\n")
	write(filepath.Join(dir, "hfhome", "token"), " hf_hfhome ")
	tokenPath := write(filepath.Join(dir, "elsewhere"), "hf_path")
	tests := []struct {
		name    string
		env     map[string]string
		want    string
		offline bool
	}{
		{name: "HF_TOKEN first", env: map[string]string{"HF_TOKEN": "hf_env", "HF_TOKEN_PATH": tokenPath, "HOME": dir + "/home"}, want: "hf_env"},
		{name: "HF_TOKEN_PATH", env: map[string]string{"HF_TOKEN_PATH": tokenPath, "HF_HOME": dir + "/hfhome"}, want: "hf_path"},
		{name: "HF_HOME/token, trimmed", env: map[string]string{"HF_HOME": dir + "/hfhome", "HOME": dir + "/home"}, want: "hf_hfhome"},
		{name: "XDG_CACHE_HOME/huggingface/token", env: map[string]string{"XDG_CACHE_HOME": dir + "/xdg", "HOME": dir + "/home"}, want: "hf_xdg"},
		{name: "~/.cache/huggingface/token", env: map[string]string{"HOME": dir + "/home"}, want: "hf_home"},
		{name: "none", env: map[string]string{"HOME": dir + "/nobody"}, want: ""},
		{name: "offline", env: map[string]string{"HOME": dir + "/nobody", "HF_HUB_OFFLINE": "1"}, offline: true},
		{name: "offline spelled true", env: map[string]string{"HOME": dir + "/nobody", "HF_HUB_OFFLINE": "True"}, offline: true},
		{name: "offline 0", env: map[string]string{"HOME": dir + "/nobody", "HF_HUB_OFFLINE": "0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.env["HF_HUB_CACHE"] = filepath.Join(dir, "cache")
			c, err := NewClient(func(k string) string { return tt.env[k] })
			if err != nil {
				t.Fatal(err)
			}
			if c.Token != tt.want || c.Offline != tt.offline {
				t.Errorf("token %q offline %v, want %q %v", c.Token, c.Offline, tt.want, tt.offline)
			}
		})
	}
}
