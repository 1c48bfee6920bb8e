package hub

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeHub is the Hub on loopback: the API's model info with sha256s
// (GET /api/models/OWNER/REPO?blobs=true), resolve URLs that redirect to a
// second host (the CDN), and the CDN serving files with Range, able to cut
// a connection mid-file, stall, ignore Range, or serve other bytes than
// the API lists.
type fakeHub struct {
	api, cdn *httptest.Server

	mu    sync.Mutex
	repos map[string]*fakeRepo
	token string // the token gated repositories accept

	// Knobs, set by tests under mu.
	cutAt   int64 // the CDN closes the connection after this byte of the file...
	cuts    int   // ...this many times; -1 for always
	stalls  int   // the CDN sends half and then nothing, this many times
	noRange bool  // the CDN ignores Range headers

	// What the CDN was asked.
	cdnReqs []fakeReq
	apiReqs []fakeReq
}

type fakeReq struct {
	path, rng, auth string
}

type fakeRepo struct {
	commit  string
	files   map[string][]byte
	listed  map[string]string // sha256 the API lists instead of the true one
	missing map[string]bool   // files the API lists that resolve does not find
	gated   bool
}

func newFakeHub(t *testing.T) *fakeHub {
	t.Helper()
	h := &fakeHub{repos: map[string]*fakeRepo{}, token: "hf_test_secret_token"}
	h.cdn = httptest.NewServer(http.HandlerFunc(h.serveCDN))
	h.api = httptest.NewServer(http.HandlerFunc(h.serveAPI))
	t.Cleanup(h.api.Close)
	t.Cleanup(h.cdn.Close)
	return h
}

// add puts a repository with files of the given sizes (random bytes) on
// the hub and returns their contents.
func (h *fakeHub) add(repo string, gated bool, sizes map[string]int) map[string][]byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := &fakeRepo{commit: fmt.Sprintf("%040x", len(h.repos)+1), files: map[string][]byte{}, listed: map[string]string{}, missing: map[string]bool{}, gated: gated}
	rng := rand.New(rand.NewPCG(uint64(len(repo)), uint64(len(h.repos))))
	for name, n := range sizes {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		r.files[name] = b
	}
	h.repos[repo] = r
	return r.files
}

func (h *fakeHub) set(f func(h *fakeHub)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f(h)
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func (h *fakeHub) serveAPI(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.apiReqs = append(h.apiReqs, fakeReq{path: r.URL.Path, auth: r.Header.Get("Authorization")})
	if rest, ok := strings.CutPrefix(r.URL.Path, "/api/models/"); ok {
		repo, found := h.repos[rest]
		if !found || r.URL.Query().Get("blobs") != "true" {
			w.Header().Set("X-Error-Code", "RepoNotFound")
			http.Error(w, `{"error":"Repository not found"}`, http.StatusNotFound)
			return
		}
		type lfs struct {
			SHA256      string `json:"sha256"`
			Size        int    `json:"size"`
			PointerSize int    `json:"pointerSize"`
		}
		type sibling struct {
			Name   string `json:"rfilename"`
			Size   int    `json:"size"`
			BlobID string `json:"blobId"`
			LFS    *lfs   `json:"lfs,omitempty"`
		}
		info := struct {
			ID       string    `json:"id"`
			SHA      string    `json:"sha"`
			Gated    any       `json:"gated"`
			Siblings []sibling `json:"siblings"`
		}{ID: rest, SHA: repo.commit, Gated: false}
		if repo.gated {
			info.Gated = "manual"
		}
		info.Siblings = append(info.Siblings, sibling{Name: "README.md", Size: 10, BlobID: strings.Repeat("b", 40)})
		for name, b := range repo.files {
			s := sha(b)
			if l, ok := repo.listed[name]; ok {
				s = l
			}
			info.Siblings = append(info.Siblings, sibling{Name: name, Size: len(b), BlobID: strings.Repeat("a", 40), LFS: &lfs{s, len(b), 135}})
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(info)
		return
	}
	// /OWNER/REPO/resolve/COMMIT/FILE
	parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 5)
	if len(parts) != 5 || parts[2] != "resolve" {
		http.NotFound(w, r)
		return
	}
	repo, ok := h.repos[parts[0]+"/"+parts[1]]
	if !ok || parts[3] != repo.commit {
		w.Header().Set("X-Error-Code", "RepoNotFound")
		http.Error(w, `{"error":"Repository not found"}`, http.StatusNotFound)
		return
	}
	if repo.gated && r.Header.Get("Authorization") != "Bearer "+h.token {
		w.Header().Set("X-Error-Code", "GatedRepo")
		http.Error(w, `{"error":"Access to model `+parts[0]+"/"+parts[1]+` is restricted. You must have access to it and be authenticated to access it. Please log in."}`, http.StatusUnauthorized)
		return
	}
	b, ok := repo.files[parts[4]]
	if !ok || repo.missing[parts[4]] {
		w.Header().Set("X-Error-Code", "EntryNotFound")
		http.Error(w, `{"error":"Entry not found"}`, http.StatusNotFound)
		return
	}
	http.Redirect(w, r, h.cdn.URL+"/blob/"+sha(b)+"?X-Amz-Signature=cdnsecret", http.StatusFound)
}

func (h *fakeHub) serveCDN(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.cdnReqs = append(h.cdnReqs, fakeReq{path: r.URL.Path, rng: r.Header.Get("Range"), auth: r.Header.Get("Authorization")})
	var data []byte
	for _, repo := range h.repos {
		for _, b := range repo.files {
			if "/blob/"+sha(b) == r.URL.Path {
				data = b
			}
		}
	}
	cut, stall := false, false
	if h.cuts != 0 {
		cut = true
		if h.cuts > 0 {
			h.cuts--
		}
	} else if h.stalls > 0 {
		stall = true
		h.stalls--
	}
	cutAt, noRange := h.cutAt, h.noRange
	h.mu.Unlock()
	if data == nil || r.URL.Query().Get("X-Amz-Signature") != "cdnsecret" {
		http.Error(w, "no such blob", http.StatusForbidden)
		return
	}
	start, status := int64(0), http.StatusOK
	if rng := r.Header.Get("Range"); rng != "" && !noRange {
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(rng, "bytes="), "-"), 10, 64)
		if err != nil || n >= int64(len(data)) {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", len(data)))
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		start, status = n, http.StatusPartialContent
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", n, len(data)-1, len(data)))
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(data)-int(start)))
	w.Header().Set("Accept-Ranges", "bytes")
	w.WriteHeader(status)
	body := data[start:]
	switch {
	case cut:
		if n := cutAt - start; n > 0 && n < int64(len(body)) {
			w.Write(body[:n])
		}
		w.(http.Flusher).Flush()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close() // mid-file: the client sees the connection end early
		}
	case stall:
		w.Write(body[:len(body)/2])
		w.(http.Flusher).Flush()
		<-r.Context().Done() // nothing more until the client gives up
	default:
		w.Write(body)
	}
}

// client returns a Client of the fake hub with a fresh cache and quick
// retries.
func (h *fakeHub) client(t *testing.T) *Client {
	return &Client{
		Endpoint: h.api.URL, Cache: &Cache{Root: t.TempDir()},
		Retries: 2, RetryDelay: time.Millisecond, LockPoll: time.Millisecond,
		Logf: t.Logf,
	}
}
