package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/dfill/dfill/cmd/dfill/internal/cli"
	"github.com/dfill/dfill/engine"
	"github.com/dfill/dfill/engine/gguf"
)

// quantizeOutput is what `dfill model quantize --json` prints.
type quantizeOutput struct {
	Input      string              `json:"input"`
	Output     string              `json:"output"`
	Mix        string              `json:"mix"`
	FileType   uint32              `json:"file_type"` // llama.cpp's llama_ftype, as general.file_type
	InputSize  int64               `json:"input_size"`
	OutputSize int64               `json:"output_size"`
	Types      []quantizeTypeTotal `json:"types"`
}

// quantizeTypeTotal is how many tensors of one type the output holds and
// their bytes.
type quantizeTypeTotal struct {
	Type    string `json:"type"`
	Tensors int    `json:"tensors"`
	Bytes   uint64 `json:"bytes"`
}

func modelQuantizeCommand() *cli.Command {
	var mixName string
	var asJSON bool
	return &cli.Command{
		Name:    "quantize",
		Args:    "IN OUT",
		NArgs:   2,
		Summary: "quantize a GGUF with one of llama.cpp's mixes (--type Q4_K_M), tensor by tensor",
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&mixName, "type", "", "the mix (required): "+strings.Join(engine.MixNames(), ", "))
			fs.BoolVar(&asJSON, "json", false, "print JSON")
		},
		Run: func(ctx context.Context, args []string) error {
			if mixName == "" {
				return cli.Usagef("--type is required: one of %s", strings.Join(engine.MixNames(), ", "))
			}
			mix, err := engine.ParseMix(mixName)
			if err != nil {
				return cli.Usagef("--type: %v", err)
			}
			return modelQuantize(ctx, args[0], args[1], mix, asJSON)
		},
	}
}

// modelQuantize writes the model at in quantized to mix to out, through a
// temporary file renamed when complete, and prints what it wrote.
func modelQuantize(ctx context.Context, in, out string, mix engine.Mix, asJSON bool) error {
	f, err := gguf.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	inSize, err := fileSize(in)
	if err != nil {
		return err
	}
	var done []engine.QuantizedTensor
	err = writeFileAtomic(out, func(w io.Writer) error {
		var err error
		done, err = engine.Quantize(ctx, f, w, mix)
		if err != nil {
			return fmt.Errorf("quantize %s: %w", in, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	outSize, err := fileSize(out)
	if err != nil {
		return err
	}
	res := quantizeOutput{Input: in, Output: out, Mix: mix.String(), FileType: uint32(mix), InputSize: inSize, OutputSize: outSize,
		Types: typeTotals(done)}
	if asJSON {
		return cli.PrintJSON(res)
	}
	bw := bufio.NewWriter(os.Stdout)
	defer bw.Flush()
	fmt.Fprintf(bw, "wrote %s: %s (file type %d), %s from %s (%s)\n", out, res.Mix, res.FileType,
		humanBytes(outSize), humanBytes(inSize), in)
	for _, t := range res.Types {
		fmt.Fprintf(bw, "  %-7s %5d tensors  %s\n", t.Type, t.Tensors, humanBytes(int64(t.Bytes)))
	}
	return nil
}

// typeTotals sums the tensors Quantize wrote by type, largest first.
func typeTotals(done []engine.QuantizedTensor) []quantizeTypeTotal {
	by := map[gguf.Type]*quantizeTypeTotal{}
	for _, t := range done {
		tot, ok := by[t.To]
		if !ok {
			tot = &quantizeTypeTotal{Type: t.To.String()}
			by[t.To] = tot
		}
		tot.Tensors++
		tot.Bytes += t.Bytes
	}
	out := make([]quantizeTypeTotal, 0, len(by))
	for _, t := range by {
		out = append(out, *t)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Bytes != out[j].Bytes {
			return out[i].Bytes > out[j].Bytes
		}
		return out[i].Type < out[j].Type
	})
	return out
}

// fileSize returns the size of the file at path.
func fileSize(path string) (int64, error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}
