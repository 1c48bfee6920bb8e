package train

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/dfill/dfill/engine/tokenizer"
)

// HeldOut are the packages of the Go tree kept out of training and used
// for evaluation: small, self-contained, typical library code.
var HeldOut = []string{"strings", "bufio", "encoding/csv", "text/tabwriter", "container/list"}

// Corpus is the text of a source tree's .go files, split into training and
// held-out files.
type Corpus struct {
	Train, Eval []string
	// TrainBytes and EvalBytes are the sizes of each part.
	TrainBytes, EvalBytes int64
}

// ReadCorpus reads every .go file under root, in lexical order, skipping
// testdata directories and those Go itself ignores (names starting with
// "." or "_"). Files of the packages in heldOut (directories relative to
// root, slash-separated) go to Eval, the rest to Train.
func ReadCorpus(root string, heldOut []string) (*Corpus, error) {
	c := &Corpus{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if p != root && (name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || !strings.HasSuffix(name, ".go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		if slices.Contains(heldOut, path.Dir(filepath.ToSlash(rel))) {
			c.Eval = append(c.Eval, string(b))
			c.EvalBytes += int64(len(b))
		} else {
			c.Train = append(c.Train, string(b))
			c.TrainBytes += int64(len(b))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("train: reading %s: %w", root, err)
	}
	if len(c.Train) == 0 {
		return nil, fmt.Errorf("%w: no .go files to train on under %s", ErrBadOptions, root)
	}
	return c, nil
}

// VocabPre is the pre-tokenizer of the trained vocabularies: the LLaMA-3
// split, under the name llama.cpp gives it (it refuses a name it does not
// know, such as the "llada" dfill wrote before, which dfill still reads).
const VocabPre = "llama-bpe"

// TrainVocab learns a byte-level BPE vocabulary of size tokens (dfill's
// special tokens included, tokenizer.DefaultSpecials) from texts, reading
// at most maxBytes of them (0: all), taken evenly across the list.
func TrainVocab(texts []string, size int, maxBytes int64) (tokenizer.Config, error) {
	var total int64
	for _, t := range texts {
		total += int64(len(t))
	}
	stride := 1
	if maxBytes > 0 && total > maxBytes {
		stride = int((total + maxBytes - 1) / maxBytes)
	}
	cfg, err := tokenizer.Train(func(yield func(string) bool) {
		for i := 0; i < len(texts); i += stride {
			if !yield(texts[i]) {
				return
			}
		}
	}, size, VocabPre, tokenizer.DefaultSpecials())
	if err != nil {
		return cfg, fmt.Errorf("train: vocabulary: %w", err)
	}
	return cfg, nil
}

// Tokenize encodes texts (special-token text as plain text) on threads
// goroutines and returns their tokens, each text followed by EOS, in order.
func Tokenize(tok *tokenizer.Tokenizer, texts []string, threads int) []int32 {
	parts := make([][]int32, len(texts))
	var wg sync.WaitGroup
	next := make(chan int)
	for range max(threads, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				parts[i] = append(tok.EncodePlain(texts[i]), tok.EOS())
			}
		}()
	}
	for i := range texts {
		next <- i
	}
	close(next)
	wg.Wait()
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	out := make([]int32, 0, n)
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
