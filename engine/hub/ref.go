package hub

import (
	"fmt"
	"strings"
)

// Ref names a model file to get: a catalog name with an optional
// quantization, a Hub repository with an optional quantization tag, or an
// exact file in a repository.
type Ref struct {
	// Name is the catalog name the reference used ("llada-8b"); "" for a
	// Hub reference.
	Name string
	// Repo is the Hub repository, OWNER/REPO; "" for a catalog model whose
	// GGUF repository is not known.
	Repo string
	// Quant is the quantization tag as given ("Q4_K_M", "q8_0"); "" lets
	// the file be chosen as llama.cpp's -hf does (Q4_K_M, then Q8_0, then
	// the first GGUF).
	Quant string
	// File is the file's path in Repo, when the reference names it or the
	// catalog knows it for Quant.
	File string
}

// ParseRef parses a model reference:
//
//	NAME[:QUANT]           a catalog name (dfill model catalog): llada-8b, llada-moe-7b-a1b:q4_k_m
//	OWNER/REPO[:QUANT]     a Hub repository, as llama.cpp's -hf: the file whose name holds QUANT
//	OWNER/REPO/FILE.gguf   an exact file in a Hub repository
//
// A QUANT picks the GGUF file whose name contains it, in any case, followed
// by '.' or '-'; without one, Q4_K_M is preferred, then Q8_0, then the
// first GGUF file, as llama.cpp chooses.
func ParseRef(s string) (Ref, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Ref{}, fmt.Errorf("%w: empty", ErrBadRef)
	}
	if !strings.Contains(s, "/") {
		return parseCatalogRef(s)
	}
	if strings.HasSuffix(strings.ToLower(s), ".gguf") && strings.Count(s, "/") < 2 {
		return Ref{}, fmt.Errorf("%w: %q: a Hub file is OWNER/REPO/FILE.gguf (or is it a path to a file that is not there?)", ErrBadRef, s)
	}
	if strings.HasSuffix(strings.ToLower(s), ".gguf") {
		owner, rest, _ := strings.Cut(s, "/")
		name, file, _ := strings.Cut(rest, "/")
		r := Ref{Repo: owner + "/" + name, File: file}
		if err := validRepo(r.Repo); err != nil {
			return Ref{}, fmt.Errorf("%w: %q: %v", ErrBadRef, s, err)
		}
		if err := validPath(file); err != nil {
			return Ref{}, fmt.Errorf("%w: %q: %v", ErrBadRef, s, err)
		}
		return r, nil
	}
	repo, quant, hasQuant := strings.Cut(s, ":")
	if err := validRepo(repo); err != nil {
		return Ref{}, fmt.Errorf("%w: %q: %v (want OWNER/REPO[:QUANT] or OWNER/REPO/FILE.gguf)", ErrBadRef, s, err)
	}
	if hasQuant {
		if err := validQuant(quant); err != nil {
			return Ref{}, fmt.Errorf("%w: %q: %v", ErrBadRef, s, err)
		}
	}
	return Ref{Repo: repo, Quant: quant}, nil
}

// parseCatalogRef parses NAME[:QUANT], NAME a catalog name.
func parseCatalogRef(s string) (Ref, error) {
	name, quant, hasQuant := strings.Cut(s, ":")
	m, ok := Lookup(name)
	if !ok {
		return Ref{}, fmt.Errorf("%w: %q is not a catalog name (%s) nor OWNER/REPO[:QUANT]", ErrBadRef, s, strings.Join(Names(), ", "))
	}
	if hasQuant {
		if err := validQuant(quant); err != nil {
			return Ref{}, fmt.Errorf("%w: %q: %v", ErrBadRef, s, err)
		}
	}
	r := Ref{Name: m.Name, Repo: m.GGUFRepo, Quant: quant}
	if quant != "" {
		r.File = m.Files[strings.ToUpper(quant)]
	}
	return r, nil
}

// String returns the reference as it is typed: NAME[:QUANT],
// OWNER/REPO[:QUANT] or OWNER/REPO/FILE.
func (r Ref) String() string {
	s := r.Name
	switch {
	case s == "" && r.File != "":
		return r.Repo + "/" + r.File
	case s == "":
		s = r.Repo
	}
	if r.Quant != "" {
		s += ":" + r.Quant
	}
	return s
}

// Model returns the catalog entry the reference names, by its catalog name
// or by its repository.
func (r Ref) Model() (Model, bool) {
	if r.Name != "" {
		return Lookup(r.Name)
	}
	return LookupRepo(r.Repo)
}

// validRepo checks a repository id as llama.cpp does: OWNER/REPO of
// letters, digits and '_', with '.', '-' and the one '/' each between two
// of them.
func validRepo(repo string) error {
	if repo == "" || len(repo) > 256 {
		return fmt.Errorf("repository %q: want OWNER/REPO", repo)
	}
	slashes, special := 0, true
	for i := 0; i < len(repo); i++ {
		c := repo[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_':
			special = false
		case c == '/' || c == '.' || c == '-':
			if special {
				return fmt.Errorf("repository %q: %q where a letter or digit belongs", repo, c)
			}
			if c == '/' {
				slashes++
			}
			special = true
		default:
			return fmt.Errorf("repository %q: character %q", repo, c)
		}
	}
	if special || slashes != 1 {
		return fmt.Errorf("repository %q: want OWNER/REPO", repo)
	}
	return nil
}

// validQuant checks a quantization tag: letters, digits, '_', '.', '-'.
func validQuant(q string) error {
	if q == "" || len(q) > 64 {
		return fmt.Errorf("quantization %q: want a tag such as Q4_K_M", q)
	}
	for _, c := range q {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return fmt.Errorf("quantization %q: character %q", q, c)
		}
	}
	return nil
}

// validPath checks a file path inside a repository: relative, '/'
// separated, no empty, "." or ".." segment, no backslash or NUL.
func validPath(p string) error {
	if p == "" || strings.ContainsAny(p, "\\\x00") {
		return fmt.Errorf("file path %q", p)
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("file path %q", p)
		}
	}
	return nil
}
