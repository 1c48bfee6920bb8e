package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/dfill/dfill/cmd/dfill/internal/cli"
	"github.com/dfill/dfill/engine/hub"
)

// The commands that get model files: pull, list, rm and catalog.

func modelPullCommand() *cli.Command {
	return &cli.Command{
		Name:    "pull",
		Args:    "REF",
		NArgs:   1,
		Summary: "download a model into the cache: a catalog name[:QUANT], OWNER/REPO[:QUANT] or OWNER/REPO/FILE.gguf",
		Run:     func(ctx context.Context, args []string) error { return modelPull(ctx, args[0]) },
	}
}

// modelPull pulls ref into the cache, showing the download's progress on
// stderr, and prints the file's path.
func modelPull(ctx context.Context, ref string) error {
	r, err := parseRef(ref)
	if err != nil {
		return err
	}
	c, err := newHubClient()
	if err != nil {
		return err
	}
	tty := term.IsTerminal(int(os.Stderr.Fd()))
	path, err := c.Pull(ctx, r, pullProgress(os.Stderr, tty, "pulling "+r.String()))
	if err != nil {
		return err
	}
	fmt.Println(path)
	return nil
}

// parseRef parses a reference typed on the command line: a bad one is a
// usage error.
func parseRef(ref string) (hub.Ref, error) {
	r, err := hub.ParseRef(ref)
	if err != nil {
		return r, cli.Usagef("%v", err)
	}
	return r, nil
}

// newHubClient returns the Hub client the environment configures, telling
// stderr of waits and retries.
func newHubClient() (*hub.Client, error) {
	c, err := hub.NewClient(os.Getenv)
	if err != nil {
		return nil, err
	}
	c.UserAgent = "dfill/" + version
	c.Logf = func(format string, args ...any) { fmt.Fprintf(os.Stderr, "dfill: "+format+"\n", args...) }
	return c, nil
}

// pullProgress returns the progress callback of a download that what
// describes: a bar with bytes, rate and time left on a terminal, a line at
// the start and at every tenth otherwise, both on w.
func pullProgress(w io.Writer, tty bool, what string) func(done, total int64) {
	if tty {
		var bar *progressbar.ProgressBar
		return func(done, total int64) {
			if bar == nil {
				bar = progressbar.NewOptions64(total,
					progressbar.OptionSetWriter(w),
					progressbar.OptionSetDescription(what),
					progressbar.OptionShowBytes(true),
					progressbar.OptionShowTotalBytes(true),
					progressbar.OptionShowCount(),
					progressbar.OptionSetPredictTime(true),
					progressbar.OptionUseIECUnits(true),
					progressbar.OptionThrottle(100*time.Millisecond),
					progressbar.OptionFullWidth(),
					progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
				)
			}
			bar.Set64(done)
		}
	}
	last := -1
	return func(done, total int64) {
		if total <= 0 {
			return
		}
		tenth := int(done * 10 / total)
		if last >= 0 && tenth <= last {
			return
		}
		pct := tenth * 10
		if last < 0 {
			pct = int(done * 100 / total)
		}
		last = tenth
		fmt.Fprintf(w, "%s: %3d%% (%s of %s)\n", what, pct, humanBytes(done), humanBytes(total))
	}
}

// resolveModel returns the model file ref names: ref itself when it is an
// existing file, the cached file when it is a catalog name or Hub reference
// in the cache (no network), and otherwise the file pulled into the cache,
// with the download's progress reported to progress (nil: none).
func resolveModel(ctx context.Context, ref string, progress func(done, total int64)) (string, error) {
	if st, err := os.Stat(ref); err == nil && !st.IsDir() {
		return ref, nil
	}
	r, err := hub.ParseRef(ref)
	if err != nil {
		if looksLikePath(ref) {
			return "", fmt.Errorf("%s: no such file", ref)
		}
		return "", err
	}
	c, err := newHubClient()
	if err != nil {
		return "", err
	}
	path, err := c.Cache.Resolve(r)
	if !errors.Is(err, hub.ErrNotCached) {
		return path, err
	}
	return c.Pull(ctx, r, progress)
}

// cliProgress is the progress of pulling ref for a command that loads a
// model: on stderr, a bar on a terminal, lines otherwise.
func cliProgress(ref string) func(done, total int64) {
	return pullProgress(os.Stderr, term.IsTerminal(int(os.Stderr.Fd())), "pulling "+ref)
}

// looksLikePath reports whether ref is written as a file path rather than
// a model reference.
func looksLikePath(ref string) bool {
	return filepath.IsAbs(ref) || strings.HasPrefix(ref, ".") || strings.HasPrefix(ref, "~") ||
		strings.ContainsRune(ref, filepath.Separator) && filepath.Separator != '/' ||
		strings.HasSuffix(strings.ToLower(ref), ".gguf") && strings.Count(ref, "/") < 2
}

func modelListCommand() *cli.Command {
	var asJSON bool
	return &cli.Command{
		Name:    "list",
		Summary: "the models in the cache, with their sizes",
		Flags:   func(fs *flag.FlagSet) { fs.BoolVar(&asJSON, "json", false, "print JSON: {cache, files: [...]}") },
		Run:     func(context.Context, []string) error { return modelList(asJSON) },
	}
}

// modelList prints the cached model files.
func modelList(asJSON bool) error {
	root, err := hub.CacheDir(os.Getenv)
	if err != nil {
		return err
	}
	files, err := (&hub.Cache{Root: root}).List()
	if err != nil {
		return err
	}
	if asJSON {
		if files == nil {
			files = []hub.CachedFile{}
		}
		return cli.PrintJSON(struct {
			Cache string           `json:"cache"`
			Files []hub.CachedFile `json:"files"`
		}{root, files})
	}
	if len(files) == 0 {
		fmt.Printf("no models in the cache %s: dfill model pull REF gets one (dfill model catalog lists some)\n", root)
		return nil
	}
	fmt.Printf("cache %s\n\n", root)
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "MODEL\tQUANT\tSIZE\tCATALOG")
	var total int64
	for _, f := range files {
		name := ""
		if m, ok := hub.LookupRepo(f.Repo); ok {
			name = m.Name
		}
		fmt.Fprintf(w, "%s/%s\t%s\t%s\t%s\n", f.Repo, f.File, f.Quant, humanBytes(f.Size), name)
		total += f.Size
	}
	fmt.Fprintf(w, "\t\t%s\t\n", humanBytes(total))
	return w.Flush()
}

func modelRmCommand() *cli.Command {
	return &cli.Command{
		Name:    "rm",
		Args:    "REF",
		NArgs:   1,
		Summary: "delete cached models: REF's file, its quantization's, or every GGUF of its repository",
		Run:     func(_ context.Context, args []string) error { return modelRm(args[0]) },
	}
}

// modelRm deletes the cached files ref names and prints what it deleted.
func modelRm(ref string) error {
	r, err := parseRef(ref)
	if err != nil {
		return err
	}
	root, err := hub.CacheDir(os.Getenv)
	if err != nil {
		return err
	}
	removed, err := (&hub.Cache{Root: root}).Remove(r)
	for _, f := range removed {
		fmt.Printf("removed %s/%s (%s)\n", f.Repo, f.File, humanBytes(f.Size))
	}
	return err
}

func modelCatalogCommand() *cli.Command {
	var asJSON bool
	return &cli.Command{
		Name:    "catalog",
		Summary: "the known diffusion coders: repositories, sizes, licenses, infill layout, recommended sampler",
		Flags:   func(fs *flag.FlagSet) { fs.BoolVar(&asJSON, "json", false, "print JSON") },
		Run:     func(context.Context, []string) error { return modelCatalog(os.Stdout, asJSON) },
	}
}

// modelCatalog prints the catalog to w.
func modelCatalog(w io.Writer, asJSON bool) error {
	if asJSON {
		return cli.PrintJSON(hub.Catalog)
	}
	or := func(s, none string) string {
		if s == "" {
			return none
		}
		return s
	}
	for i, m := range hub.Catalog {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s  %s\n", m.Name, m.Title)
		fmt.Fprintf(w, "  repository  %s\n", m.Repo)
		fmt.Fprintf(w, "  gguf        %s\n", or(m.GGUFRepo, "none known"))
		for _, q := range sortedKeys(m.Files) {
			fmt.Fprintf(w, "  %-10s  %s\n", q, m.Files[q])
		}
		params := fmt.Sprintf("%gB", m.Params.Total)
		if m.Params.Active < m.Params.Total {
			params += fmt.Sprintf(" (%gB active)", m.Params.Active)
		}
		ctx := "?"
		if m.Context > 0 {
			ctx = fmt.Sprint(m.Context)
		}
		fmt.Fprintf(w, "  arch        %s  parameters %s  context %s  license %s\n", m.Arch, params, ctx, or(m.License, "?"))
		fmt.Fprintf(w, "  infill      %s\n", m.Infill)
		fmt.Fprintf(w, "  sampler     %s\n", describeDefaults(m.Defaults))
		if m.Unverified != "" {
			fmt.Fprintf(w, "  unverified  %s\n", m.Unverified)
		}
	}
	return nil
}

// describeDefaults says a model's recommended sampler settings in a line.
func describeDefaults(d hub.Defaults) string {
	var parts []string
	if d.Steps == 0 {
		parts = append(parts, "steps 1 per token")
	} else {
		parts = append(parts, fmt.Sprintf("steps %d", d.Steps))
	}
	if d.Schedule != "" {
		parts = append(parts, "schedule "+d.Schedule)
	}
	if d.Score != "" {
		parts = append(parts, "score "+d.Score)
	}
	if d.BlockLength > 0 {
		parts = append(parts, fmt.Sprintf("block %d", d.BlockLength))
	}
	if d.Threshold > 0 {
		parts = append(parts, fmt.Sprintf("threshold %g", d.Threshold))
	}
	parts = append(parts, fmt.Sprintf("temperature %g", d.Temperature))
	if d.TopP > 0 {
		parts = append(parts, fmt.Sprintf("top-p %g", d.TopP))
	}
	return strings.Join(parts, ", ")
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
