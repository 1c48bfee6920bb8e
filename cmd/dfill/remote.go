package main

import (
	"context"

	"go.uber.org/zap"

	"github.com/dfill/dfill/cmd/dfill/internal/cli"
	"github.com/dfill/dfill/completion"
	"github.com/dfill/dfill/fim"
	"github.com/dfill/dfill/lsp"
	"github.com/dfill/dfill/remote"
)

// remoteContextTokens is what a remote generator reports as its context
// length. The server's own is unknown without asking it, and it is only a
// cap: the prompt the pipeline sends is the contextTokens setting's budget
// (completion's default, 1024 tokens, unless set), and the span a quarter
// of this at most. 32768 is the context of the served coders dfill
// targets (Mercury's FIM model, LLaDA 2) and far above the budgets used.
const remoteContextTokens = 32768

// remoteGenerator adapts a remote.Client to completion.Generator: the
// served model's candidates go through the same post-processing,
// validation and ranking as the engine's.
type remoteGenerator struct {
	c *remote.Client
}

// newRemoteGenerator returns the generator of the served model cfg names,
// and the func that releases it (its idle connections).
func newRemoteGenerator(cfg remote.Config, log *zap.Logger) (completion.Generator, func(), error) {
	c, err := remote.New(cfg)
	if err != nil {
		return nil, nil, err
	}
	log.Info("remote backend", zap.String("url", c.URL()), zap.String("protocol", c.Protocol()),
		zap.String("model", cfg.Model), zap.Bool("apiKey", cfg.APIKeyEnv != ""))
	return &remoteGenerator{c: c}, c.CloseIdleConnections, nil
}

// Name names the served model and its host.
func (g *remoteGenerator) Name() string { return g.c.Name() }

// ContextTokens is remoteContextTokens.
func (g *remoteGenerator) ContextTokens() int { return remoteContextTokens }

// CountTokens estimates the tokens of s as a quarter of its bytes
// (fim.ApproxTokens): dfill has no tokenizer of a served model, and code
// runs at about four bytes a token in the BPE vocabularies of the coders
// served (Qwen2.5, LLaMA 3). The estimate only sizes the prompt windows.
func (g *remoteGenerator) CountTokens(s string) int { return fim.ApproxTokens(s) }

// Infill asks the server for candidates of opt.MaxTokens tokens, greedy.
// The denoising steps the server streams (mercury and dfill) go to onStep
// as the steps of one span; their number is 0 until the last, since a
// server does not say it in advance. A server reports no token
// probabilities, so the candidates carry none (Confidence 0): they rank in
// the server's order, and pass any minScore but a positive one.
func (g *remoteGenerator) Infill(ctx context.Context, p fim.Prompt, opt completion.GenerateOptions, onStep func(completion.Step)) ([]completion.Candidate, error) {
	var stepFn func(remote.Step)
	if onStep != nil {
		stepFn = func(s remote.Step) {
			if s.Index == 0 { // one span is shown: the first choice's
				onStep(completion.Step{Span: 0, Spans: 1, Step: s.Step, Steps: s.Steps, Text: s.Text})
			}
		}
	}
	cands, err := g.c.Infill(ctx, p, remote.Options{
		MaxTokens: opt.MaxTokens,
		Steps:     opt.Steps,
		Algorithm: opt.Algorithm,
		Threshold: opt.Threshold,
	}, stepFn)
	if err != nil {
		return nil, err
	}
	out := make([]completion.Candidate, len(cands))
	for i, c := range cands {
		out[i] = completion.Candidate{Text: c.Text, Steps: c.Steps, Span: c.Index}
	}
	return out, nil
}

// remoteFlags returns the remote backend's configuration that the shared
// flags give.
func remoteFlags(sf *cli.Shared) remote.Config {
	return remote.Config{URL: sf.RemoteURL, Protocol: sf.RemoteProtocol, Model: sf.RemoteModel, APIKeyEnv: sf.RemoteAPIKeyEnv}
}

// lspRemote returns the shared flags' remote configuration as the default
// of the server's remote setting.
func lspRemote(sf *cli.Shared) lsp.RemoteConfig {
	return lsp.RemoteConfig{URL: sf.RemoteURL, Protocol: sf.RemoteProtocol, Model: sf.RemoteModel, APIKeyEnv: sf.RemoteAPIKeyEnv}
}

// remoteSetting returns the server's remote setting as a remote.Config.
func remoteSetting(rc lsp.RemoteConfig) remote.Config {
	return remote.Config{URL: rc.URL, Protocol: rc.Protocol, Model: rc.Model, APIKeyEnv: rc.APIKeyEnv}
}
