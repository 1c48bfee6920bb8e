package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/dfill/dfill/cmd/dfill/internal/cli"
	"github.com/dfill/dfill/engine/convert"
)

// convertFlags are the flags of `dfill model convert`.
type convertFlags struct {
	out, outType, name string
	asJSON             bool
}

// convertOutput is what `dfill model convert --json` prints.
type convertOutput struct {
	Path    string `json:"path"`
	Arch    string `json:"arch"`
	Type    string `json:"type"`
	Tensors int    `json:"tensors"`
	Params  uint64 `json:"parameters"`
}

func modelConvertCommand() *cli.Command {
	f := &convertFlags{}
	return &cli.Command{
		Name:    "convert",
		Args:    "DIR",
		NArgs:   1,
		Summary: "convert a Hugging Face checkpoint folder (safetensors) to GGUF (--out PATH)",
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&f.out, "out", "", "output GGUF `path` (required)")
			fs.StringVar(&f.outType, "outtype", "auto", "type of the weight matrices: f32, f16, bf16, q8_0, or auto (bf16 for a BF16 checkpoint, else f16)")
			fs.StringVar(&f.name, "name", "", "general.name (default: the folder's name)")
			fs.BoolVar(&f.asJSON, "json", false, "print JSON")
		},
		Run: func(ctx context.Context, args []string) error { return f.run(ctx, args[0]) },
	}
}

// run converts the checkpoint in dir to --out.
func (f *convertFlags) run(ctx context.Context, dir string) error {
	if f.out == "" {
		return cli.Usagef("--out is required")
	}
	if _, _, err := convert.ParseType(f.outType); err != nil {
		return cli.Usagef("--outtype: %v", err)
	}
	var res convert.Result
	err := writeFileAtomic(f.out, func(w io.Writer) error {
		var err error
		res, err = convert.Convert(ctx, dir, w, convert.Options{OutType: f.outType, Name: f.name})
		return err
	})
	if err != nil {
		return err
	}
	out := convertOutput{Path: f.out, Arch: res.Arch, Type: res.Type.String(), Tensors: res.Tensors, Params: res.Params}
	if f.asJSON {
		return cli.PrintJSON(out)
	}
	fmt.Printf("wrote %s: %s, %d tensors, %s parameters, %s weights\n", out.Path, out.Arch, out.Tensors, humanCount(out.Params), out.Type)
	return nil
}
