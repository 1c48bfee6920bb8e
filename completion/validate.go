package completion

import (
	"context"
	"strings"

	"github.com/dfill/dfill/completion/syntax"
)

// Validator checks candidates against a document's syntax. The default,
// used by New, parses with tree-sitter (package syntax).
type Validator interface {
	// Begin starts checking replacements of doc[start:end] in a document
	// of languageID.
	Begin(ctx context.Context, languageID string, doc []byte, start, end int) (Checker, error)
}

// Checker checks replacements of one range of one document.
type Checker interface {
	// Check reports whether insert, in place of the range, adds no syntax
	// errors the document did not have.
	Check(insert string) (bool, error)
	// Close releases what the Checker holds.
	Close()
}

// earlyChecker is a Checker whose Begin runs on its own goroutine, started
// before the model runs: parsing the window as it is does not depend on the
// candidates, so it overlaps generation instead of following it. Check and
// Close wait for it.
type earlyChecker struct {
	done chan struct{}
	chk  Checker
	err  error
}

// beginEarly starts v.Begin for doc[start:end] on a new goroutine.
func beginEarly(ctx context.Context, v Validator, languageID string, doc []byte, start, end int) *earlyChecker {
	e := &earlyChecker{done: make(chan struct{})}
	go func() {
		defer close(e.done)
		e.chk, e.err = v.Begin(ctx, languageID, doc, start, end)
	}()
	return e
}

func (e *earlyChecker) Check(insert string) (bool, error) {
	<-e.done
	if e.err != nil {
		return false, e.err
	}
	return e.chk.Check(insert)
}

func (e *earlyChecker) Close() {
	<-e.done
	if e.chk != nil {
		e.chk.Close()
	}
}

// treeSitter is the Validator backed by package syntax.
type treeSitter struct{ v syntax.Validator }

func (t *treeSitter) Begin(ctx context.Context, languageID string, doc []byte, start, end int) (Checker, error) {
	s, err := t.v.Begin(ctx, languageID, doc, start, end)
	if err != nil {
		return nil, err
	}
	return sessionChecker{s}, nil
}

type sessionChecker struct{ s *syntax.Session }

func (c sessionChecker) Check(insert string) (bool, error) {
	v, err := c.s.Check(insert)
	return v.OK, err
}

func (c sessionChecker) Close() { c.s.Close() }

// maxTrims bounds how many line prefixes of one candidate are checked.
const maxTrims = 12

// trimValid returns the longest prefix of whole lines of cand (all of it
// first) whose finished form (see finish) passes chk, or "" when none does.
// Prefixes ending in a blank line are skipped. A single-line candidate
// either passes whole or is dropped.
func trimValid(chk Checker, cand string, m mode) (string, error) {
	end := len(cand)
	for tries := 0; tries < maxTrims; tries++ {
		c := cand[:end]
		last := c[strings.LastIndexByte(c, '\n')+1:]
		if strings.TrimSpace(last) != "" {
			ok, err := chk.Check(finish(c, m))
			if err != nil {
				return "", err
			}
			if ok {
				return c, nil
			}
		}
		nl := strings.LastIndexByte(c, '\n')
		if nl < 0 {
			break
		}
		end = nl
	}
	return "", nil
}
