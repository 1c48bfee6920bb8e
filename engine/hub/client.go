package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// DefaultEndpoint is the Hub's address when HF_ENDPOINT does not name a
// mirror.
const DefaultEndpoint = "https://huggingface.co"

// Client downloads model files from the Hub into a Cache.
type Client struct {
	Endpoint  string       // the Hub or a mirror: scheme and host, no trailing slash
	Token     string       // sent as a bearer token to Endpoint's host only; never logged
	Offline   bool         // HF_HUB_OFFLINE: never ask the Hub; Pull fails with ErrNotCached
	UserAgent string       // "" sends "dfill"
	HTTP      *http.Client // its CheckRedirect should be CheckRedirect; nil uses one that is
	Cache     *Cache

	// Retries is how many times a download that broke off is resumed
	// without having made progress (0: 4); RetryDelay the first wait
	// between tries, doubled each time (0: 1s).
	Retries    int
	RetryDelay time.Duration
	// StallTimeout ends a download from which no byte arrived for that
	// long, to be resumed (0: 60s).
	StallTimeout time.Duration
	// LockPoll is how often a pull waiting for another one's lock looks
	// again (0: 1s); LockStale how long a lock lives without its holder's
	// heartbeat (0: 2m). A lock whose process is gone is taken at once.
	LockPoll  time.Duration
	LockStale time.Duration
	// Logf, when set, is told of waits and retries.
	Logf func(format string, args ...any)
}

// NewClient returns a Client configured from the environment that getenv
// reads: HF_ENDPOINT (the Hub, or a mirror), the token for gated and
// private repositories (see token), HF_HUB_OFFLINE, and the cache folder
// CacheDir names.
func NewClient(getenv func(string) string) (*Client, error) {
	root, err := CacheDir(getenv)
	if err != nil {
		return nil, err
	}
	endpoint := strings.TrimRight(getenv("HF_ENDPOINT"), "/")
	if endpoint == "" {
		endpoint = DefaultEndpoint
	}
	if u, err := url.Parse(endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("HF_ENDPOINT %q: want an http(s) URL such as %s", endpoint, DefaultEndpoint)
	}
	return &Client{Endpoint: endpoint, Token: token(getenv), Offline: truthy(getenv("HF_HUB_OFFLINE")),
		Cache: &Cache{Root: root}}, nil
}

// token returns the Hub token as huggingface_hub finds it: HF_TOKEN, else
// the file HF_TOKEN_PATH names, else the one `huggingface-cli login`
// writes, HF_HOME/token (HF_HOME defaulting to XDG_CACHE_HOME/huggingface,
// then ~/.cache/huggingface); "" when there is none.
func token(getenv func(string) string) string {
	if t := strings.TrimSpace(getenv("HF_TOKEN")); t != "" {
		return t
	}
	path := getenv("HF_TOKEN_PATH")
	if path == "" {
		home := getenv("HF_HOME")
		switch {
		case home != "":
		case getenv("XDG_CACHE_HOME") != "":
			home = filepath.Join(getenv("XDG_CACHE_HOME"), "huggingface")
		case getenv("HOME") != "":
			home = filepath.Join(getenv("HOME"), ".cache", "huggingface")
		default:
			return ""
		}
		path = filepath.Join(home, "token")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// truthy reads a boolean environment value as huggingface_hub does: 1,
// ON, YES or TRUE in any case.
func truthy(v string) bool {
	switch strings.ToUpper(strings.TrimSpace(v)) {
	case "1", "ON", "YES", "TRUE":
		return true
	}
	return false
}

// CheckRedirect follows up to ten redirects and sends the Authorization
// header only to the host of the first request, as huggingface_hub does:
// the Hub's own links keep the token, a CDN's never see it.
func CheckRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return fmt.Errorf("%s: stopped after 10 redirects", redactURL(req.URL))
	}
	if first := via[0].URL; req.URL.Host != first.Host || req.URL.Scheme != first.Scheme {
		req.Header.Del("Authorization")
	}
	return nil
}

var defaultHTTP = &http.Client{
	CheckRedirect: CheckRedirect,
	Transport: func() http.RoundTripper {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.ResponseHeaderTimeout = time.Minute
		return t
	}(),
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return defaultHTTP
}

// get sends a GET for u with the client's headers and the extra ones in
// hdr, the token only when u is on the endpoint's host.
func (c *Client) get(ctx context.Context, u string, hdr http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	ua := c.UserAgent
	if ua == "" {
		ua = "dfill"
	}
	req.Header.Set("User-Agent", ua)
	if c.Token != "" {
		if e, err := url.Parse(c.Endpoint); err == nil && e.Host == req.URL.Host {
			req.Header.Set("Authorization", "Bearer "+c.Token)
		}
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return nil, scrubError(err)
	}
	return resp, nil
}

// scrubError drops the query from the URL a *url.Error names: a signed CDN
// URL carries credentials there.
func scrubError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			return &url.Error{Op: ue.Op, URL: redactURL(u), Err: ue.Err}
		}
	}
	return err
}

// repoFile is one file of a repository as the API lists it.
type repoFile struct {
	Path   string
	Size   int64
	SHA256 string // "" for a file not stored with LFS
}

// repoInfo is what the API says of a repository at its main revision.
type repoInfo struct {
	Commit string
	Files  []repoFile // sorted by path
}

var (
	reCommit = regexp.MustCompile(`^[0-9a-f]{40}$`)
	reSHA256 = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// info asks the API for repo's files and their sha256s, as
// huggingface_hub's model_info(files_metadata=True) does:
//
//	GET /api/models/OWNER/REPO?blobs=true
//	{"sha": COMMIT, "siblings": [{"rfilename": PATH, "size": N, "lfs": {"sha256": HEX, "size": N}}, ...]}
func (c *Client) info(ctx context.Context, repo string) (repoInfo, error) {
	u := c.Endpoint + "/api/models/" + repo + "?blobs=true"
	resp, err := c.get(ctx, u, http.Header{"Accept": {"application/json"}})
	if err != nil {
		return repoInfo{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return repoInfo{}, fmt.Errorf("GET %s: %w", redactURL(resp.Request.URL), err)
	}
	if resp.StatusCode != http.StatusOK {
		return repoInfo{}, statusError(resp, body, "repository "+repo, c.Token != "")
	}
	var raw struct {
		SHA      string `json:"sha"`
		Siblings []struct {
			Path string `json:"rfilename"`
			Size int64  `json:"size"`
			LFS  *struct {
				SHA256 string `json:"sha256"`
				Size   int64  `json:"size"`
			} `json:"lfs"`
		} `json:"siblings"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return repoInfo{}, fmt.Errorf("GET %s: the answer is not the Hub's model info: %w", redactURL(resp.Request.URL), err)
	}
	if !reCommit.MatchString(raw.SHA) {
		return repoInfo{}, fmt.Errorf("GET %s: the answer names no commit (sha %q)", redactURL(resp.Request.URL), raw.SHA)
	}
	info := repoInfo{Commit: raw.SHA}
	for _, s := range raw.Siblings {
		if validPath(s.Path) != nil {
			continue // never a path that could leave the snapshot
		}
		f := repoFile{Path: s.Path, Size: s.Size}
		if s.LFS != nil && reSHA256.MatchString(s.LFS.SHA256) {
			f.SHA256, f.Size = s.LFS.SHA256, s.LFS.Size
		}
		info.Files = append(info.Files, f)
	}
	slices.SortFunc(info.Files, func(a, b repoFile) int { return strings.Compare(a.Path, b.Path) })
	return info, nil
}

// Pull makes sure the file r picks is in the cache and returns its path.
// It asks the API for the repository's files and their sha256s, chooses
// the file, and when its blob is not cached yet downloads it from the
// resolve URL at that commit (following redirects) into a .incomplete file,
// resuming with Range after a broken connection or an earlier run, checks
// its sha256 and only then moves it into place. Two pulls of one file, in
// one process or two, take turns on a lock file. progress, when not nil,
// is called with the bytes there and the file's size as they grow.
func (c *Client) Pull(ctx context.Context, r Ref, progress func(done, total int64)) (string, error) {
	if r.Repo == "" {
		return "", noRepoError(r)
	}
	if c.Offline {
		return "", fmt.Errorf("pull %s: %w, and HF_HUB_OFFLINE is set: unset it to download", r, ErrNotCached)
	}
	info, err := c.info(ctx, r.Repo)
	if err != nil {
		return "", fmt.Errorf("pull %s: %w", r, err)
	}
	paths := make([]string, len(info.Files))
	for i, f := range info.Files {
		paths[i] = f.Path
	}
	p, err := choose(r, paths)
	if err != nil {
		return "", fmt.Errorf("pull %s: %w", r, err)
	}
	f := info.Files[slices.IndexFunc(info.Files, func(f repoFile) bool { return f.Path == p })]
	if f.SHA256 == "" {
		return "", fmt.Errorf("pull %s: %w: the Hub lists no sha256 for %s/%s (not stored with LFS), so it cannot be verified",
			r, ErrUnsupported, r.Repo, p)
	}
	path, err := c.fetch(ctx, r.Repo, info.Commit, f, progress)
	if err != nil {
		return "", fmt.Errorf("pull %s: %s/%s: %w", r, r.Repo, p, err)
	}
	return path, nil
}

// fetch puts the blob of f in the cache, unless it is there, and links it
// into the snapshot of commit.
func (c *Client) fetch(ctx context.Context, repo, commit string, f repoFile, progress func(done, total int64)) (string, error) {
	blob := c.Cache.blobPath(repo, f.SHA256)
	if exists(blob) {
		return c.Cache.link(repo, commit, f.Path, f.SHA256)
	}
	if err := os.MkdirAll(filepath.Dir(blob), 0o755); err != nil {
		return "", err
	}
	release, err := c.lock(ctx, c.Cache.lockPath(repo, f.SHA256), repo+"/"+f.Path)
	if err != nil {
		return "", err
	}
	defer release()
	if !exists(blob) { // the pull that held the lock may have fetched it
		u := c.Endpoint + "/" + repo + "/resolve/" + commit + "/" + escapePath(f.Path)
		if err := c.download(ctx, u, repo+"/"+f.Path, blob+".incomplete", f, progress); err != nil {
			return "", err
		}
		if err := os.Rename(blob+".incomplete", blob); err != nil {
			return "", err
		}
	}
	return c.Cache.link(repo, commit, f.Path, f.SHA256)
}

// escapePath escapes each segment of a repository path for a URL.
func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func (c *Client) logf(format string, args ...any) {
	if c.Logf != nil {
		c.Logf(format, args...)
	}
}
