package lsp

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.lsp.dev/protocol"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/dfill/dfill/completion"
)

// Config is the settings section "dfill", from initializationOptions,
// workspace/didChangeConfiguration and workspace/configuration. Settings a
// client sends overlay the current ones key by key; zero values mean the
// defaults of the layer that reads them.
type Config struct {
	Model                string   `json:"model,omitempty"`
	Backend              string   `json:"backend,omitempty"`
	Steps                int      `json:"steps,omitempty"`
	Algorithm            string   `json:"algorithm,omitempty"`
	Threshold            float64  `json:"threshold,omitempty"`
	MaxTokens            int      `json:"maxTokens,omitempty"`
	ContextTokens        int      `json:"contextTokens,omitempty"`
	DebounceMs           int      `json:"debounceMs,omitempty"`
	Languages            []string `json:"languages,omitempty"`
	DenoiseNotifications bool     `json:"denoiseNotifications,omitempty"`
	LogLevel             string   `json:"logLevel,omitempty"`
	CompletionItems      string   `json:"completionItems,omitempty"` // auto (or empty), always, never
	// MinScore is the least score an automatic completion needs to be
	// shown (completion.Options.MinScore); nil means the model's own
	// calibrated threshold.
	MinScore *float64 `json:"minScore,omitempty"`
	// Remote is the served model the remote backend asks.
	Remote RemoteConfig `json:"remote"`
}

// RemoteConfig is the "remote" setting: which served model the remote
// backend asks, and how.
type RemoteConfig struct {
	URL      string `json:"url,omitempty"`      // the server's base URL, http or https
	Protocol string `json:"protocol,omitempty"` // one of RemoteProtocols
	Model    string `json:"model,omitempty"`    // the model's name, for servers that serve several
	// APIKeyEnv names the environment variable that holds the API key;
	// the key itself never travels in settings.
	APIKeyEnv string `json:"apiKeyEnv,omitempty"`
}

// RemoteProtocols returns the protocols the remote backend speaks. The
// remote package owns the list (remote.Protocols), which lsp may not
// import; a test in cmd/dfill keeps the two equal.
func RemoteProtocols() []string {
	return []string{"mercury", "openai-fim", "sglang", "llamacpp", "dfill"}
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
		MinScore:      minScoreOption(c.MinScore),
	}
}

// minScoreOption is the completion.Options.MinScore of a minScore setting:
// the model's threshold (negative) when it is not set.
func minScoreOption(v *float64) float64 {
	if v == nil {
		return -1
	}
	return *v
}

// modelConfig returns the part of the settings that selects the model.
func (c Config) modelConfig() ModelConfig {
	// An empty backend is the cpu one: a client that sends "" must not
	// make the server load the same model again.
	backend := cmp.Or(c.Backend, "cpu")
	if backend != "remote" {
		return ModelConfig{Model: c.Model, Backend: backend}
	}
	return ModelConfig{Model: cmp.Or(c.Remote.Model, c.Remote.URL), Backend: backend, Remote: c.Remote}
}

// A setting is one key of the dfill section: apply checks a value's type
// and range and sets it in c; null resets the key to its default in def.
type setting struct {
	accepts string // what a valid value is, for the message about a bad one
	apply   func(c *Config, raw json.RawMessage, def Config) error
	show    func(c Config) any // the value kept when a new one is refused
}

// quietRefusal is an apply error whose message says why the value was
// refused without repeating it: the value may hold a secret pasted into the
// wrong field (the remote object's apiKeyEnv or url).
type quietRefusal struct{ why string }

func (q *quietRefusal) Error() string { return q.why }

// Limits of the numeric settings.
const (
	maxSteps         = 1024
	maxSpanTokens    = 1024
	maxContextTokens = 1 << 20
	maxDebounceMs    = 10_000
)

// settings are the keys of the dfill section.
var settings = map[string]setting{
	"model": {"a path to a GGUF file, a catalog name or a Hugging Face reference (OWNER/REPO[:QUANT]; pulled when not cached), or empty for the embedded model",
		func(c *Config, raw json.RawMessage, def Config) error { return decodeInto(&c.Model, def.Model, raw) },
		func(c Config) any { return c.Model }},
	"backend": {`"cpu" or "remote" (a served model: see the remote setting)`,
		func(c *Config, raw json.RawMessage, def Config) error {
			return oneOf(&c.Backend, def.Backend, raw, "", "cpu", "remote")
		},
		func(c Config) any { return c.Backend }},
	"remote": {`an object {"url": an http or https URL without credentials, "protocol": ` + strings.Join(quoted(RemoteProtocols()), ", ") +
		`, "model": a model name, "apiKeyEnv": the name of the environment variable holding the API key (upper-case letters, digits and _)}`,
		func(c *Config, raw json.RawMessage, def Config) error { return remoteIn(&c.Remote, def.Remote, raw) },
		func(c Config) any { return c.Remote }},
	"steps": {fmt.Sprintf("an integer from 0 (the model's default) to %d", maxSteps),
		func(c *Config, raw json.RawMessage, def Config) error {
			return intIn(&c.Steps, def.Steps, raw, 0, maxSteps)
		},
		func(c Config) any { return c.Steps }},
	"algorithm": {`"confidence", "margin" or "entropy"`,
		func(c *Config, raw json.RawMessage, def Config) error {
			return oneOf(&c.Algorithm, def.Algorithm, raw, "", "confidence", "margin", "entropy")
		},
		func(c Config) any { return c.Algorithm }},
	"threshold": {"a number from 0 (the step schedule) to 1",
		func(c *Config, raw json.RawMessage, def Config) error {
			return floatIn(&c.Threshold, def.Threshold, raw, 0, 1)
		},
		func(c Config) any { return c.Threshold }},
	"maxTokens": {fmt.Sprintf("an integer from 0 (the default) to %d", maxSpanTokens),
		func(c *Config, raw json.RawMessage, def Config) error {
			return intIn(&c.MaxTokens, def.MaxTokens, raw, 0, maxSpanTokens)
		},
		func(c Config) any { return c.MaxTokens }},
	"contextTokens": {fmt.Sprintf("an integer from 0 (the default) to %d", maxContextTokens),
		func(c *Config, raw json.RawMessage, def Config) error {
			return intIn(&c.ContextTokens, def.ContextTokens, raw, 0, maxContextTokens)
		},
		func(c Config) any { return c.ContextTokens }},
	"debounceMs": {fmt.Sprintf("an integer from 0 to %d", maxDebounceMs),
		func(c *Config, raw json.RawMessage, def Config) error {
			return intIn(&c.DebounceMs, def.DebounceMs, raw, 0, maxDebounceMs)
		},
		func(c Config) any { return c.DebounceMs }},
	"languages": {"a list of language ids (empty: every language)",
		func(c *Config, raw json.RawMessage, def Config) error {
			return decodeInto(&c.Languages, def.Languages, raw)
		},
		func(c Config) any { return c.Languages }},
	"denoiseNotifications": {"true or false",
		func(c *Config, raw json.RawMessage, def Config) error {
			return decodeInto(&c.DenoiseNotifications, def.DenoiseNotifications, raw)
		},
		func(c Config) any { return c.DenoiseNotifications }},
	"logLevel": {`"debug", "info", "warn" or "error"`,
		func(c *Config, raw json.RawMessage, def Config) error {
			return oneOf(&c.LogLevel, def.LogLevel, raw, "", "debug", "info", "warn", "error")
		},
		func(c Config) any { return c.LogLevel }},
	"minScore": {"a number from 0 (show every completion) to 1, or null for the model's calibrated threshold",
		func(c *Config, raw json.RawMessage, def Config) error {
			if isNull(raw) {
				c.MinScore = def.MinScore
				return nil
			}
			v := minScoreOption(c.MinScore)
			if err := floatIn(&v, 0, raw, 0, 1); err != nil {
				return err
			}
			c.MinScore = &v
			return nil
		},
		func(c Config) any { return c.MinScore }},
	"completionItems": {`"auto" (off when the editor shows inline completions), "always" or "never"`,
		func(c *Config, raw json.RawMessage, def Config) error {
			return oneOf(&c.CompletionItems, def.CompletionItems, raw, "", "auto", "always", "never")
		},
		func(c Config) any { return c.CompletionItems }},
}

// errOutOfRange marks a value of the right type that a setting does not take.
var errOutOfRange = errors.New("out of range")

// decodeInto sets *dst from raw, or to def when raw is null.
func decodeInto[T any](dst *T, def T, raw json.RawMessage) error {
	if isNull(raw) {
		*dst = def
		return nil
	}
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	*dst = v
	return nil
}

// oneOf sets *dst to the string in raw when it is one of allowed.
func oneOf(dst *string, def string, raw json.RawMessage, allowed ...string) error {
	v := *dst
	if err := decodeInto(&v, def, raw); err != nil {
		return err
	}
	if !slices.Contains(allowed, v) {
		return errOutOfRange
	}
	*dst = v
	return nil
}

// intIn sets *dst to the integer in raw when it lies in [lo, hi].
func intIn(dst *int, def int, raw json.RawMessage, lo, hi int) error {
	v := *dst
	if err := decodeInto(&v, def, raw); err != nil {
		return err
	}
	if v < lo || v > hi {
		return errOutOfRange
	}
	*dst = v
	return nil
}

// floatIn sets *dst to the number in raw when it lies in [lo, hi].
func floatIn(dst *float64, def float64, raw json.RawMessage, lo, hi float64) error {
	v := *dst
	if err := decodeInto(&v, def, raw); err != nil {
		return err
	}
	if !(v >= lo && v <= hi) {
		return errOutOfRange
	}
	*dst = v
	return nil
}

// remoteIn sets *dst to the remote object in raw: a key it lacks, or sets
// to null, takes its value in def. It refuses a value with a quietRefusal,
// which never repeats the URL or the variable's name: either might hold a
// pasted key.
func remoteIn(dst *RemoteConfig, def RemoteConfig, raw json.RawMessage) error {
	if isNull(raw) {
		*dst = def
		return nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return refuse("not an object")
	}
	next := def
	fields := map[string]*string{"url": &next.URL, "protocol": &next.Protocol, "model": &next.Model, "apiKeyEnv": &next.APIKeyEnv}
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		v := obj[k]
		f, ok := fields[k]
		if !ok {
			return refuse("unknown key %q", k)
		}
		if isNull(v) {
			continue
		}
		if err := json.Unmarshal(v, f); err != nil {
			return refuse("%s is not a string", k)
		}
	}
	if next.URL != "" {
		u, err := url.Parse(next.URL)
		switch {
		case err != nil:
			return refuse("url is not a URL")
		case u.User != nil:
			return refuse("url holds credentials")
		case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
			return refuse("url is not an http or https URL with a host")
		}
	}
	if next.Protocol != "" && !slices.Contains(RemoteProtocols(), next.Protocol) {
		return refuse("protocol %q is unknown", next.Protocol)
	}
	if next.APIKeyEnv != "" && !envName.MatchString(next.APIKeyEnv) {
		return refuse("apiKeyEnv is not the name of an environment variable")
	}
	*dst = next
	return nil
}

// refuse returns a quietRefusal saying why, formatted as fmt.Sprintf does.
func refuse(format string, args ...any) error {
	return &quietRefusal{why: fmt.Sprintf(format, args...)}
}

// envName is what remote.apiKeyEnv may be (remote.ValidEnvName): a
// variable's name, never the key.
var envName = regexp.MustCompile(`^[A-Z_][A-Z0-9_]{0,127}$`)

// quoted returns each of ss in double quotes.
func quoted(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}

// isNull reports whether raw holds no settings: nothing, null, or an empty
// array (how Neovim encodes an empty Lua table).
func isNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || bytes.Equal(raw, []byte("null")) || bytes.Equal(bytes.ReplaceAll(raw, []byte(" "), nil), []byte("[]"))
}

// mergeSettings returns the configuration the settings in raw ask for. The
// section a client sends is the whole of its user's settings, not a change
// to the last one: a key it sets takes that value, a key it lacks or sets
// to null takes its value in def (the command line's). raw is an object
// holding the section under "dfill", or, unless wrapped is set, the
// section itself; null, empty or [] leaves cfg as it is.
// (workspace/didChangeConfiguration carries all of the editor's settings,
// {"gopls": ..., "dfill": ...}, so there only the dfill key counts.) A
// value of the wrong type or out of range is refused and the key keeps its
// value in cfg; problems says which and why, one line each. Keys dfill
// does not know are ignored (an editor's client may keep its own settings
// in the section).
func mergeSettings(cfg, def Config, raw []byte, wrapped bool) (next Config, problems []string) {
	if isNull(raw) {
		return cfg, nil
	}
	var section map[string]json.RawMessage
	if err := json.Unmarshal(raw, &section); err != nil {
		return cfg, []string{fmt.Sprintf("settings are not a JSON object: %v", err)}
	}
	inner, ok := section["dfill"]
	if !ok && wrapped {
		return cfg, nil
	}
	if ok {
		if isNull(inner) {
			return cfg, nil
		}
		section = nil
		if err := json.Unmarshal(inner, &section); err != nil {
			return cfg, []string{fmt.Sprintf(`settings "dfill" are not a JSON object: %v`, err)}
		}
	}
	keys := make([]string, 0, len(section))
	for k := range section {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	next = cfg
	for _, k := range keys {
		st, ok := settings[k]
		if !ok {
			continue
		}
		if err := st.apply(&next, section[k], def); err != nil {
			kept, _ := json.Marshal(st.show(next))
			if q := (*quietRefusal)(nil); errors.As(err, &q) {
				problems = append(problems, fmt.Sprintf("setting %q: refused (%s); it must be %s; keeping %s", k, q.why, st.accepts, kept))
				continue
			}
			problems = append(problems, fmt.Sprintf("setting %q: %s is not %s; keeping %s",
				k, strings.TrimSpace(string(section[k])), st.accepts, kept))
		}
	}
	// The section is the whole of the user's settings: a key it lacks
	// (a setting the user removed) takes its default again.
	for k, st := range settings {
		if _, ok := section[k]; !ok {
			st.apply(&next, nil, def)
		}
	}
	return next, problems
}

// setConfig installs cfg: the completion options and log level apply at
// once (the Completer drops answers made with other options); a different
// model is loaded when the session already loaded one.
func (s *Server) setConfig(cfg Config) {
	s.mu.Lock()
	old := s.cfg
	s.cfg = cfg
	s.mu.Unlock()

	s.completer.SetOptions(cfg.completionOptions())
	if cfg.LogLevel != old.LogLevel && s.opts.Level != nil {
		// An empty level is the command line's.
		if lvl, err := zapcore.ParseLevel(cmp.Or(cfg.LogLevel, s.opts.Config.LogLevel, "info")); err == nil {
			s.opts.Level.SetLevel(lvl)
		}
	}
	s.loadMu.Lock()
	reload := s.loaded && s.loadedCfg != cfg.modelConfig()
	s.loadMu.Unlock()
	if reload {
		go s.loadModel(s.ctx)
	}
}

// applySettings overlays raw (see mergeSettings) on the current
// configuration and tells the user about the values it refused.
func (s *Server) applySettings(source string, raw []byte, wrapped bool) {
	cfg, problems := mergeSettings(s.config(), s.opts.Config, raw, wrapped)
	s.setConfig(cfg)
	s.reportSettings(source, problems)
}

// reportSettings logs refused settings and shows them to the user.
func (s *Server) reportSettings(source string, problems []string) {
	if len(problems) == 0 {
		return
	}
	s.log.Warn("settings refused", zap.String("from", source), zap.Strings("problems", problems))
	s.showMessage(protocol.MessageTypeWarning, "dfill: "+strings.Join(problems, "; "))
}

// DidChangeConfiguration applies pushed settings (the "dfill" key of the
// editor's settings), or pulls them with workspace/configuration when the
// notification carries none.
func (s *Server) DidChangeConfiguration(ctx context.Context, p *protocol.DidChangeConfigurationParams) error {
	settings := bytes.TrimSpace(p.Settings)
	if !hasSection(settings) {
		// A pull is a call to the client: it must not wait on the read loop.
		go s.pullConfiguration(s.ctx)
		return nil
	}
	s.applySettings("workspace/didChangeConfiguration", settings, true)
	s.log.Info("configuration changed")
	return nil
}

// pullConfiguration asks the client for the "dfill" section, when it
// supports workspace/configuration, and applies it.
func (s *Server) pullConfiguration(ctx context.Context) {
	s.mu.Lock()
	ws := s.caps.Workspace
	s.mu.Unlock()
	if ws == nil || ws.Configuration == nil || !*ws.Configuration {
		return
	}
	res, err := s.client.Configuration(ctx, &protocol.ConfigurationParams{Items: []protocol.ConfigurationItem{{Section: ptr("dfill")}}})
	if err != nil {
		s.log.Warn("pulling configuration", zap.Error(err))
		return
	}
	if len(res) == 0 {
		return
	}
	s.applySettings("workspace/configuration", res[0], false)
}

// hasSection reports whether raw is an object with a "dfill" key.
func hasSection(raw []byte) bool {
	var obj map[string]json.RawMessage
	if isNull(raw) || json.Unmarshal(raw, &obj) != nil {
		return false
	}
	_, ok := obj["dfill"]
	return ok
}
