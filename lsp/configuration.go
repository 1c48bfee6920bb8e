package lsp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"go.lsp.dev/jsonrpc2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/dfill/dfill/completion"
)

// RemoteConfig points dfill at a served model (settings key dfill.remote).
type RemoteConfig struct {
	URL       string `json:"url,omitempty"`
	Protocol  string `json:"protocol,omitempty"`  // mercury, openai, llamacpp, sglang, dfill
	APIKeyEnv string `json:"apiKeyEnv,omitempty"` // the environment variable holding the API key
	Model     string `json:"model,omitempty"`
}

// Config is the settings section "dfill", from initializationOptions,
// workspace/didChangeConfiguration and workspace/configuration. Settings a
// client sends overlay the current ones field by field; zero values mean
// the defaults of the layer that reads them.
type Config struct {
	Model                string       `json:"model,omitempty"`
	Backend              string       `json:"backend,omitempty"`
	Remote               RemoteConfig `json:"remote"`
	Steps                int          `json:"steps,omitempty"`
	Algorithm            string       `json:"algorithm,omitempty"`
	Threshold            float64      `json:"threshold,omitempty"`
	MaxTokens            int          `json:"maxTokens,omitempty"`
	ContextTokens        int          `json:"contextTokens,omitempty"`
	DebounceMs           int          `json:"debounceMs,omitempty"`
	Languages            []string     `json:"languages,omitempty"`
	DenoiseNotifications bool         `json:"denoiseNotifications,omitempty"`
	LogLevel             string       `json:"logLevel,omitempty"`
}

// completionOptions returns the completion policy the settings ask for.
func (c Config) completionOptions() completion.Options {
	return completion.Options{
		MaxTokens:     c.MaxTokens,
		ContextTokens: c.ContextTokens,
		Steps:         c.Steps,
		Algorithm:     c.Algorithm,
		Threshold:     c.Threshold,
		Debounce:      time.Duration(c.DebounceMs) * time.Millisecond,
		Languages:     c.Languages,
	}
}

// modelConfig returns the part of the settings that selects the model.
func (c Config) modelConfig() ModelConfig {
	return ModelConfig{Model: c.Model, Backend: c.Backend, Remote: c.Remote}
}

// mergeSettings overlays the settings in raw on cfg. raw is either the
// "dfill" section itself or an object holding it under "dfill"; null or
// empty leaves cfg as it is. On a malformed value the fields that decoded
// still apply and the error says which one did not.
func mergeSettings(cfg Config, raw json.RawMessage) (Config, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return cfg, nil
	}
	var outer map[string]json.RawMessage
	if err := json.Unmarshal(raw, &outer); err != nil {
		return cfg, fmt.Errorf("settings: %w", err)
	}
	if section, ok := outer["dfill"]; ok {
		raw = bytes.TrimSpace(section)
		if bytes.Equal(raw, []byte("null")) {
			return cfg, nil
		}
	}
	next := cfg
	next.Languages = nil
	if err := json.Unmarshal(raw, &next); err != nil {
		if _, ok := err.(*json.UnmarshalTypeError); !ok {
			return cfg, fmt.Errorf("settings: %w", err)
		}
		return keepLanguages(cfg, next, raw), fmt.Errorf("settings: %w", err)
	}
	return keepLanguages(cfg, next, raw), nil
}

// keepLanguages restores the previous language list when raw did not set one
// (the list is cleared before decoding so that a new list replaces the old
// one rather than overwriting it element by element).
func keepLanguages(old, next Config, raw json.RawMessage) Config {
	var probe struct {
		Languages json.RawMessage `json:"languages"`
	}
	if json.Unmarshal(raw, &probe) == nil && probe.Languages == nil {
		next.Languages = old.Languages
	}
	return next
}

// setConfig installs cfg: the completion options and log level apply at
// once; a different model is loaded when the session already loaded one.
func (s *Server) setConfig(cfg Config) {
	s.mu.Lock()
	old := s.cfg
	s.cfg = cfg
	s.mu.Unlock()

	s.completer.SetOptions(cfg.completionOptions())
	if cfg.LogLevel != "" && cfg.LogLevel != old.LogLevel && s.opts.Level != nil {
		if lvl, err := zapcore.ParseLevel(cfg.LogLevel); err == nil {
			s.opts.Level.SetLevel(lvl)
		} else {
			s.log.Warn("logLevel", zap.String("value", cfg.LogLevel), zap.Error(err))
		}
	}
	s.loadMu.Lock()
	reload := s.loaded && s.loadedCfg != cfg.modelConfig()
	s.loadMu.Unlock()
	if reload {
		go s.loadModel(s.ctx)
	}
}

// didChangeConfiguration applies pushed settings, or pulls them with
// workspace/configuration when the notification carries none.
func (s *Server) didChangeConfiguration(ctx context.Context, req *jsonrpc2.Request) (any, error) {
	var p DidChangeConfigurationParams
	if err := decode(req, &p); err != nil {
		return nil, err
	}
	settings := bytes.TrimSpace(p.Settings)
	if len(settings) == 0 || bytes.Equal(settings, []byte("null")) || bytes.Equal(settings, []byte("{}")) {
		// A pull is a call to the client: it must not wait on the read loop.
		go s.pullConfiguration(s.ctx)
		return nil, nil
	}
	cfg, err := mergeSettings(s.config(), settings)
	s.setConfig(cfg)
	if err != nil {
		s.showMessage(MessageWarning, "dfill: "+err.Error())
		return nil, err
	}
	s.log.Info("configuration changed")
	return nil, nil
}

// pullConfiguration asks the client for the "dfill" section, when it
// supports workspace/configuration, and applies it.
func (s *Server) pullConfiguration(ctx context.Context) {
	s.mu.Lock()
	supported := s.caps.Workspace.Configuration
	s.mu.Unlock()
	if !supported {
		return
	}
	var res []json.RawMessage
	if err := s.call(ctx, "workspace/configuration", ConfigurationParams{Items: []ConfigurationItem{{Section: "dfill"}}}, &res); err != nil {
		s.log.Warn("pulling configuration", zap.Error(err))
		return
	}
	if len(res) == 0 {
		return
	}
	cfg, err := mergeSettings(s.config(), res[0])
	s.setConfig(cfg)
	if err != nil {
		s.log.Warn("workspace/configuration", zap.Error(err))
		s.showMessage(MessageWarning, "dfill: "+err.Error())
	}
}
