package api

import (
	"context"
	"strings"

	"github.com/dfill/dfill/completion/syntax"
	"github.com/dfill/dfill/engine"
)

// Answers of the syntax check (extension.Validation).
const (
	validAccepted = "accepted"
	validTrimmed  = "trimmed"
	validRejected = "rejected"
)

// maxCheckLines bounds how many line prefixes of an answer checkSyntax
// tries.
const maxCheckLines = 12

// checkSyntax checks text in place between p's prefix and suffix in a
// document of language: whole, then without its last lines one by one,
// as the editor's pipeline trims a candidate. It returns the outcome and
// the text that passed ("" when rejected).
func checkSyntax(ctx context.Context, language string, p engine.Prompt, text string) (outcome, passed string, err error) {
	var v syntax.Validator
	s, err := v.Begin(ctx, language, []byte(p.Prefix+p.Suffix), len(p.Prefix), len(p.Prefix))
	if err != nil {
		return "", "", err
	}
	defer s.Close()
	cand := text
	for range maxCheckLines {
		if strings.TrimSpace(cand) == "" {
			break
		}
		verdict, err := s.Check(cand)
		if err != nil {
			return "", "", err
		}
		if verdict.OK {
			if cand == text {
				return validAccepted, cand, nil
			}
			return validTrimmed, cand, nil
		}
		nl := strings.LastIndexByte(cand, '\n')
		if nl < 0 {
			break
		}
		cand = cand[:nl]
	}
	return validRejected, "", nil
}

// extend returns dfill's addition to the answer res of j, or nil when the
// request named no language.
func extend(ctx context.Context, j job, res result) (*extension, error) {
	if j.language == "" {
		return nil, nil
	}
	outcome, passed, err := checkSyntax(ctx, j.language, j.prompt, res.text)
	if err != nil {
		return nil, err
	}
	pieces := res.pieces
	if pieces == nil {
		pieces = []string{}
	}
	return &extension{Validation: outcome, Validated: passed, Steps: res.steps, Tokens: pieces}, nil
}
