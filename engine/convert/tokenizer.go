package convert

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/dfill/dfill/engine/tokenizer"
)

// The pre-tokenizer regular expressions of tokenizer.json that dfill and
// llama.cpp know, and the tokenizer.ggml.pre names llama.cpp gives them.
const (
	qwen2Split  = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	llama3Split = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	// lingSplit is the split of inclusionAI's Ling tokenizers, LLaDA-MoE's
	// among them. llama.cpp's converter writes "llada-moe" for LLaDA-MoE
	// (found by its tokens' hash), which llama.cpp splits as bailingmoe. It
	// is Qwen2's split written otherwise: the same contractions; possessive
	// quantifiers that change no match (a [^\r\n\p{L}\p{N}] given back
	// cannot start \p{L}+, and [\r\n]* needs nothing given back); and
	// \s*[\r\n] ending where \s*[\r\n]+ does, after the run's last
	// newline. dfill's tokenizer reads "llada-moe" as the qwen2 split.
	lingSplit = `'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+`
)

// hfTokenizer is the part of a tokenizer.json the converter reads.
type hfTokenizer struct {
	AddedTokens []struct {
		ID      int    `json:"id"`
		Content string `json:"content"`
		Special bool   `json:"special"`
	} `json:"added_tokens"`
	PreTokenizer json.RawMessage `json:"pre_tokenizer"`
	Model        struct {
		Type   string            `json:"type"`
		Vocab  map[string]int    `json:"vocab"`
		Merges []json.RawMessage `json:"merges"`
	} `json:"model"`
}

// preTokenizer is one node of tokenizer.json's pre_tokenizer.
type preTokenizer struct {
	Type    string `json:"type"`
	Pattern struct {
		Regex  string `json:"Regex"`
		String string `json:"String"`
	} `json:"pattern"`
	UseRegex      *bool          `json:"use_regex"`
	PreTokenizers []preTokenizer `json:"pretokenizers"`
}

// vocab reads the tokenizer of dir (tokenizer.json, tokenizer_config.json,
// config.json, generation_config.json) as a vocabulary of n tokens, the
// rows of the model's embedding: ids the tokenizer lacks become unused
// "[PADi]" tokens, as convert_hf_to_gguf.py names them.
func vocab(dir string, n int, hp hparams) (tokenizer.Config, error) {
	path := filepath.Join(dir, "tokenizer.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return tokenizer.Config{}, fmt.Errorf("%w: %v", ErrBadCheckpoint, err)
	}
	var tj hfTokenizer
	if err := json.Unmarshal(b, &tj); err != nil {
		return tokenizer.Config{}, fmt.Errorf("%w: %s: %v", ErrBadCheckpoint, path, err)
	}
	if tj.Model.Type != "BPE" {
		return tokenizer.Config{}, fmt.Errorf("%w: %s: model type %q (dfill converts byte-level BPE)", ErrUnsupported, path, tj.Model.Type)
	}
	cfg := tokenizer.Config{Model: "gpt2", BOS: -1, EOS: -1, PAD: -1, Mask: -1, EOT: -1, Expand: -1}
	if cfg.Pre, err = preName(tj.PreTokenizer); err != nil {
		return tokenizer.Config{}, fmt.Errorf("%s: %w", path, err)
	}
	cfg.Tokens = make([]string, n)
	cfg.Types = make([]int32, n)
	ids := map[string]int32{}
	for tok, id := range tj.Model.Vocab {
		if id < 0 || id >= n {
			return tokenizer.Config{}, fmt.Errorf("%w: %s: token %q has id %d, outside the model's %d embeddings", ErrBadCheckpoint, path, tok, id, n)
		}
		cfg.Tokens[id], cfg.Types[id] = tok, tokenizer.TypeNormal
		ids[tok] = int32(id)
	}
	for _, a := range tj.AddedTokens {
		if a.ID < 0 || a.ID >= n {
			return tokenizer.Config{}, fmt.Errorf("%w: %s: added token %q has id %d, outside the model's %d embeddings", ErrBadCheckpoint, path, a.Content, a.ID, n)
		}
		cfg.Tokens[a.ID], cfg.Types[a.ID] = a.Content, tokenizer.TypeUserDefined
		if a.Special {
			cfg.Types[a.ID] = tokenizer.TypeControl
		}
		ids[a.Content] = int32(a.ID)
	}
	for i := range cfg.Tokens {
		if cfg.Types[i] == 0 {
			cfg.Tokens[i], cfg.Types[i] = fmt.Sprintf("[PAD%d]", i), tokenizer.TypeUnused
		}
	}
	if cfg.Merges, err = merges(tj.Model.Merges); err != nil {
		return tokenizer.Config{}, fmt.Errorf("%s: %w", path, err)
	}
	if err := specialIDs(dir, &cfg, ids, hp); err != nil {
		return tokenizer.Config{}, err
	}
	return cfg, nil
}

// preName returns the tokenizer.ggml.pre name of a tokenizer.json
// pre_tokenizer: the Split regular expression of Qwen2 (or Ling, the same
// split) or LLaMA-3, or GPT-2's own ByteLevel split.
func preName(raw json.RawMessage) (string, error) {
	var root preTokenizer
	if len(raw) == 0 || string(raw) == "null" {
		return "", fmt.Errorf("%w: no pre_tokenizer (dfill converts byte-level BPE)", ErrUnsupported)
	}
	if err := json.Unmarshal(raw, &root); err != nil {
		return "", fmt.Errorf("%w: pre_tokenizer: %v", ErrBadCheckpoint, err)
	}
	nodes := []preTokenizer{root}
	if root.Type == "Sequence" {
		nodes = root.PreTokenizers
	}
	var split string
	byteLevelRegex := false
	for _, p := range nodes {
		switch p.Type {
		case "Split":
			split = p.Pattern.Regex
		case "ByteLevel":
			byteLevelRegex = p.UseRegex == nil || *p.UseRegex
		}
	}
	switch {
	case split == qwen2Split:
		return "qwen2", nil
	case split == lingSplit:
		return "llada-moe", nil // the one Ling model dfill converts
	case split == llama3Split:
		return "llama-bpe", nil
	case split == "" && byteLevelRegex:
		return "gpt-2", nil
	}
	return "", fmt.Errorf("%w: pre-tokenizer split %q is none of Qwen2's, Ling's, LLaMA-3's or GPT-2's", ErrUnsupported, split)
}

// merges returns tokenizer.json's merges as "left right" strings; a merge
// written as a pair whose parts hold spaces gets them as U+0120, as
// llama.cpp's converter writes them.
func merges(raw []json.RawMessage) ([]string, error) {
	out := make([]string, len(raw))
	for i, m := range raw {
		var s string
		if err := json.Unmarshal(m, &s); err == nil {
			out[i] = s
			continue
		}
		var pair []string
		if err := json.Unmarshal(m, &pair); err != nil || len(pair) != 2 {
			return nil, fmt.Errorf("%w: merge %d is %s, neither \"a b\" nor [a, b]", ErrBadCheckpoint, i, m)
		}
		out[i] = strings.ReplaceAll(pair[0], " ", "Ġ") + " " + strings.ReplaceAll(pair[1], " ", "Ġ")
	}
	return out, nil
}

// specialIDs sets cfg's special token ids as llama.cpp's SpecialVocab
// finds them: tokenizer_config.json's <kind>_token named by its text, then
// config.json's <kind>_token_id, then generation_config.json's. It sets
// AddBOS from tokenizer_config.json's add_bos_token.
func specialIDs(dir string, cfg *tokenizer.Config, ids map[string]int32, hp hparams) error {
	tc, err := readJSON(filepath.Join(dir, "tokenizer_config.json"), true)
	if err != nil {
		return err
	}
	gc, err := readJSON(filepath.Join(dir, "generation_config.json"), true)
	if err != nil {
		return err
	}
	for _, s := range []struct {
		kind string
		dst  *int32
	}{{"bos", &cfg.BOS}, {"eos", &cfg.EOS}, {"pad", &cfg.PAD}, {"mask", &cfg.Mask}} {
		if id, ok := ids[tokenText(tc[s.kind+"_token"])]; ok {
			*s.dst = id
			continue
		}
		for _, src := range []hparams{hp, gc} {
			if id, ok := src.int(s.kind + "_token_id"); ok && id >= 0 && id < len(cfg.Tokens) {
				*s.dst = int32(id)
				break
			}
		}
	}
	if add, ok := tc["add_bos_token"].(bool); ok {
		cfg.AddBOS = add
	}
	return nil
}

// tokenText returns the text of a tokenizer_config.json special token,
// written either as a string or as an object with "content".
func tokenText(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case map[string]any:
		s, _ := t["content"].(string)
		return s
	}
	return ""
}
