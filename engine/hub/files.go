package hub

import (
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
)

// defaultQuants are the tags tried, in order, when a reference gives none:
// llama.cpp's -hf preference.
var defaultQuants = []string{"Q4_K_M", "Q8_0"}

// sidecars are the name parts of GGUF files that are not a model of their
// own (projectors, importance matrices, draft heads), as llama.cpp skips.
var sidecars = []string{"mmproj", "imatrix", "mtp-", "eagle3-", "dflash-", "dspark-"}

// isModelFile reports whether p is a GGUF model file, not a sidecar.
func isModelFile(p string) bool {
	if !strings.HasSuffix(strings.ToLower(p), ".gguf") {
		return false
	}
	base := path.Base(p)
	for _, s := range sidecars {
		if strings.Contains(base, s) {
			return false
		}
	}
	return true
}

var (
	reSplit = regexp.MustCompile(`(?i)^(.+)-([0-9]{5})-of-([0-9]{5})$`)
	reTag   = regexp.MustCompile(`(?i)[-.]([A-Z0-9_]+)$`)
)

// split is what a GGUF file name says of itself: the name before any
// -0000i-of-0000n part suffix, its quantization tag in upper case, and
// which part of how many it is (1 of 1 for a whole file).
type split struct {
	prefix, tag  string
	index, count int
}

// splitOf parses p as llama.cpp's get_gguf_split_info does.
func splitOf(p string) split {
	s := split{index: 1, count: 1}
	prefix, ok := strings.CutSuffix(p, ".gguf")
	if !ok {
		prefix, ok = strings.CutSuffix(p, ".GGUF")
	}
	if !ok {
		return split{}
	}
	if m := reSplit.FindStringSubmatch(prefix); m != nil {
		s.index, _ = strconv.Atoi(m[2])
		s.count, _ = strconv.Atoi(m[3])
		prefix = m[1]
	}
	if m := reTag.FindStringSubmatch(prefix); m != nil {
		s.tag = strings.ToUpper(m[1])
	}
	s.prefix = prefix
	return s
}

// quantOf returns the quantization tag a GGUF file's name ends with
// ("Q4_K_M" for "LLaDA-8B-Instruct.Q4_K_M.gguf"), or "".
func quantOf(p string) string { return splitOf(path.Base(p)).tag }

// pick returns the file of paths (in the order given) that a reference
// with the quantization tag quant chooses, as llama.cpp's -hf does: the
// first model file whose path holds quant followed by '.' or '-', in any
// case, skipping parts after the first of a split file; with no quant,
// Q4_K_M, then Q8_0, then the first model file.
func pick(paths []string, quant string) (string, bool) {
	tags := defaultQuants
	if quant != "" {
		tags = []string{quant}
	}
	for _, t := range tags {
		for _, p := range paths {
			if isModelFile(p) && hasTag(p, t) && splitOf(p).index == 1 {
				return p, true
			}
		}
	}
	if quant == "" {
		for _, p := range paths {
			if isModelFile(p) && splitOf(p).index == 1 {
				return p, true
			}
		}
	}
	return "", false
}

// hasTag reports whether the path p holds the quantization tag followed by
// '.' or '-', in any case: llama.cpp's (?i)TAG[.-].
func hasTag(p, tag string) bool {
	p, tag = strings.ToUpper(p), strings.ToUpper(tag)
	return strings.Contains(p, tag+".") || strings.Contains(p, tag+"-")
}

// choose returns the file of paths that r picks: r.File, matched in any
// case as llama.cpp matches --hf-file, or the one pick chooses for
// r.Quant. A file split in parts is refused: dfill loads one-file GGUFs.
func choose(r Ref, paths []string) (string, error) {
	var (
		p  string
		ok bool
	)
	if r.File != "" {
		for _, q := range paths {
			if strings.EqualFold(q, r.File) {
				p, ok = q, true
				break
			}
		}
	} else {
		p, ok = pick(paths, r.Quant)
	}
	if !ok {
		return "", fmt.Errorf("%w: %s", ErrNotFound, noFileMessage(r, paths))
	}
	if s := splitOf(p); s.count > 1 {
		return "", fmt.Errorf("%w: %s/%s is part %d of %d: dfill loads a GGUF in one file (join the parts with llama.cpp's llama-gguf-split --merge)",
			ErrUnsupported, r.Repo, p, s.index, s.count)
	}
	return p, nil
}

// noFileMessage says which file r asked for and which GGUF files there are.
func noFileMessage(r Ref, paths []string) string {
	var ggufs []string
	for _, p := range paths {
		if isModelFile(p) {
			ggufs = append(ggufs, p)
		}
	}
	want := "a GGUF model file"
	switch {
	case r.File != "":
		want = "file " + r.File
	case r.Quant != "":
		want = "a GGUF file tagged " + r.Quant
	}
	if len(ggufs) == 0 {
		return fmt.Sprintf("%s: no %s (and no GGUF files at all)", r.Repo, strings.TrimPrefix(want, "a "))
	}
	return fmt.Sprintf("%s has no %s; its GGUF files: %s", r.Repo, strings.TrimPrefix(want, "a "), strings.Join(ggufs, ", "))
}
