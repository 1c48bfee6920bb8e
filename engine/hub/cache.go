package hub

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Cache is a folder of downloaded model files in Hugging Face's layout
// (see the package documentation).
type Cache struct {
	Root string
}

// CacheDir returns the cache folder the environment, read through getenv,
// names: $HF_HUB_CACHE, else $HF_HOME/hub (Hugging Face's own cache, so
// files other tools downloaded are found), else $XDG_CACHE_HOME/dfill,
// else the user cache directory's dfill folder.
func CacheDir(getenv func(string) string) (string, error) {
	if d := getenv("HF_HUB_CACHE"); d != "" {
		return d, nil
	}
	if d := getenv("HF_HOME"); d != "" {
		return filepath.Join(d, "hub"), nil
	}
	if d := getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "dfill"), nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache folder (set XDG_CACHE_HOME or HF_HUB_CACHE): %w", err)
	}
	return filepath.Join(d, "dfill"), nil
}

// CachedFile is one model file in the cache.
type CachedFile struct {
	Repo   string `json:"repo"`   // OWNER/REPO
	File   string `json:"file"`   // path in the repository
	Quant  string `json:"quant"`  // quantization tag of its name, "" if none
	Commit string `json:"commit"` // the snapshot it belongs to
	Path   string `json:"path"`   // the path to load: the snapshot's entry
	Blob   string `json:"blob"`   // where its bytes are
	Size   int64  `json:"size"`   // bytes
}

// repoFolder returns the folder name of repo: models--OWNER--REPO.
func repoFolder(repo string) string { return "models--" + strings.ReplaceAll(repo, "/", "--") }

func (c *Cache) repoDir(repo string) string { return filepath.Join(c.Root, repoFolder(repo)) }

func (c *Cache) blobPath(repo, sha string) string {
	return filepath.Join(c.repoDir(repo), "blobs", sha)
}

func (c *Cache) snapshotPath(repo, commit, file string) string {
	return filepath.Join(c.repoDir(repo), "snapshots", commit, filepath.FromSlash(file))
}

func (c *Cache) lockPath(repo, sha string) string {
	return filepath.Join(c.Root, ".locks", repoFolder(repo), sha+".lock")
}

// mainCommit returns the commit refs/main records for repo, or "".
func (c *Cache) mainCommit(repo string) string {
	b, err := os.ReadFile(filepath.Join(c.repoDir(repo), "refs", "main"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// files returns the files of repo's snapshots whose bytes are there: those
// of the commit refs/main names first, then the other snapshots' in name
// order, each sorted by path.
func (c *Cache) files(repo string) ([]CachedFile, error) {
	dir := filepath.Join(c.repoDir(repo), "snapshots")
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	main := c.mainCommit(repo)
	commits := make([]string, 0, len(entries))
	for _, e := range entries {
		if e.IsDir() {
			commits = append(commits, e.Name())
		}
	}
	slices.SortStableFunc(commits, func(a, b string) int {
		switch {
		case a == main:
			return -1
		case b == main:
			return 1
		}
		return strings.Compare(a, b)
	})
	var out []CachedFile
	for _, commit := range commits {
		root := filepath.Join(dir, commit)
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			st, err := os.Stat(p) // follows the link: a dangling one is skipped
			if err != nil || !st.Mode().IsRegular() {
				return nil
			}
			blob, err := filepath.EvalSymlinks(p)
			if err != nil {
				return nil
			}
			rel, _ := filepath.Rel(root, p)
			rel = filepath.ToSlash(rel)
			out = append(out, CachedFile{Repo: repo, File: rel, Quant: quantOf(rel), Commit: commit, Path: p, Blob: blob, Size: st.Size()})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Resolve returns the path of the cached file r picks, without the network:
// the file of the snapshot refs/main names, else of another snapshot. It
// returns an error wrapping ErrNotCached when there is none.
func (c *Cache) Resolve(r Ref) (string, error) {
	if r.Repo == "" {
		return "", noRepoError(r)
	}
	files, err := c.files(r.Repo)
	if err != nil {
		return "", fmt.Errorf("%s: %w", r, err)
	}
	var paths []string
	seen := map[string]bool{}
	byPath := map[string]string{}
	for _, f := range files {
		if !seen[f.File] { // the first snapshot's copy: refs/main's
			seen[f.File] = true
			paths = append(paths, f.File)
			byPath[f.File] = f.Path
		}
	}
	p, err := choose(r, paths)
	if errors.Is(err, ErrNotFound) {
		return "", fmt.Errorf("%w: %s (cache %s)", ErrNotCached, r, c.Root)
	}
	if err != nil {
		return "", err
	}
	return byPath[p], nil
}

// List returns the GGUF model files in the cache, by repository and file;
// a blob two snapshots share is listed once.
func (c *Cache) List() ([]CachedFile, error) {
	entries, err := os.ReadDir(c.Root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cache %s: %w", c.Root, err)
	}
	var out []CachedFile
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), "models--")
		if !e.IsDir() || !ok {
			continue
		}
		repo := strings.Replace(rest, "--", "/", 1)
		files, err := c.files(repo)
		if err != nil {
			return nil, fmt.Errorf("cache %s: %w", c.Root, err)
		}
		seen := map[string]bool{}
		for _, f := range files {
			if isModelFile(f.File) && !seen[f.Blob] {
				seen[f.Blob] = true
				out = append(out, f)
			}
		}
	}
	slices.SortFunc(out, func(a, b CachedFile) int {
		if c := strings.Compare(a.Repo, b.Repo); c != 0 {
			return c
		}
		return strings.Compare(a.File, b.File)
	})
	return out, nil
}

// Remove deletes the cached model files r names: the file it names, the
// files whose names hold its quantization tag, or with neither every GGUF
// file of its repository, in every snapshot. A blob is deleted once no
// snapshot refers to it, and a repository folder once it has no snapshot
// left. It returns the files removed, or an error wrapping ErrNotCached
// when there were none.
func (c *Cache) Remove(r Ref) ([]CachedFile, error) {
	if r.Repo == "" {
		return nil, noRepoError(r)
	}
	files, err := c.files(r.Repo)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r, err)
	}
	var removed []CachedFile
	for _, f := range files {
		if removes(r, f.File) {
			if err := os.Remove(f.Path); err != nil {
				return removed, fmt.Errorf("%s: %w", r, err)
			}
			removed = append(removed, f)
		}
	}
	if len(removed) == 0 {
		return nil, fmt.Errorf("%w: %s (cache %s)", ErrNotCached, r, c.Root)
	}
	return removed, c.prune(r.Repo, removed)
}

// removes reports whether Remove(r) takes the file at path p.
func removes(r Ref, p string) bool {
	switch {
	case r.File != "":
		return strings.EqualFold(p, r.File)
	case !isModelFile(p):
		return false
	case r.Quant != "":
		return hasTag(p, r.Quant)
	}
	return true
}

// prune deletes the blobs of removed that no snapshot refers to any more,
// the snapshot folders left empty and, when no snapshot is left, the
// repository's folder and its locks.
func (c *Cache) prune(repo string, removed []CachedFile) error {
	left, err := c.files(repo)
	if err != nil {
		return err
	}
	used := map[string]bool{}
	for _, f := range left {
		used[f.Blob] = true
	}
	for _, f := range removed {
		if f.Blob != f.Path && !used[f.Blob] {
			if err := os.Remove(f.Blob); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	snaps := filepath.Join(c.repoDir(repo), "snapshots")
	removeEmptyDirs(snaps)
	if _, err := os.Stat(snaps); errors.Is(err, fs.ErrNotExist) {
		if err := os.RemoveAll(c.repoDir(repo)); err != nil {
			return err
		}
		return os.RemoveAll(filepath.Join(c.Root, ".locks", repoFolder(repo)))
	}
	return nil
}

// removeEmptyDirs deletes the folders under and including dir that hold
// nothing, deepest first.
func removeEmptyDirs(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.IsDir() {
			removeEmptyDirs(filepath.Join(dir, e.Name()))
		}
	}
	os.Remove(dir) // fails, as wanted, when something is left
}

// link makes the snapshot entry of file at commit point to the blob sha,
// records commit as main's, and returns the entry's path. Where a symlink
// cannot be made the blob is moved into the snapshot.
func (c *Cache) link(repo, commit, file, sha string) (string, error) {
	blob := c.blobPath(repo, sha)
	dst := c.snapshotPath(repo, commit, file)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", err
	}
	if target, err := filepath.EvalSymlinks(dst); err == nil {
		if same(target, blob) {
			return dst, c.setMain(repo, commit)
		}
		if err := os.Remove(dst); err != nil {
			return "", err
		}
	} else if _, lerr := os.Lstat(dst); lerr == nil {
		os.Remove(dst) // a dangling link
	}
	rel, err := filepath.Rel(filepath.Dir(dst), blob)
	if err != nil {
		return "", err
	}
	if err := os.Symlink(rel, dst); err != nil {
		if err := os.Rename(blob, dst); err != nil {
			return "", fmt.Errorf("%s: neither a link nor a move into the snapshot worked: %w", dst, err)
		}
	}
	return dst, c.setMain(repo, commit)
}

// same reports whether the paths a and b are one file.
func same(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

// setMain records commit in refs/main, atomically.
func (c *Cache) setMain(repo, commit string) error {
	dir := filepath.Join(c.repoDir(repo), "refs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".main.*.tmp")
	if err != nil {
		return err
	}
	_, werr := tmp.WriteString(commit)
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), filepath.Join(dir, "main"))
	}
	if werr != nil {
		os.Remove(tmp.Name())
	}
	return werr
}

// noRepoError is the error for a catalog reference with no GGUF repository.
func noRepoError(r Ref) error {
	msg := fmt.Sprintf("%s: no GGUF repository is known for it", r)
	if m, ok := r.Model(); ok && m.Unverified != "" {
		msg += " (" + m.Unverified + ")"
	}
	return fmt.Errorf("%w: %s", ErrNotFound, msg)
}
