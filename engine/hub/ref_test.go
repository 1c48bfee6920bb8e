package hub

import (
	"errors"
	"strings"
	"testing"
)

func TestParseRef(t *testing.T) {
	tests := []struct {
		name, in string
		want     Ref
		str      string // what String gives back; "" for in
		err      string // "" for no error
	}{
		{name: "catalog name", in: "llada-8b", want: Ref{Name: "llada-8b", Repo: "mradermacher/LLaDA-8B-Instruct-GGUF"}},
		{name: "catalog name with a quantization the catalog knows the file of", in: "llada-8b:q4_k_m",
			want: Ref{Name: "llada-8b", Repo: "mradermacher/LLaDA-8B-Instruct-GGUF", Quant: "q4_k_m", File: "LLaDA-8B-Instruct.Q4_K_M.gguf"}},
		{name: "catalog name with a quantization resolved by tag", in: "llada-moe-7b-a1b:q4_k_m",
			want: Ref{Name: "llada-moe-7b-a1b", Repo: "mradermacher/LLaDA-MoE-7B-A1B-Instruct-GGUF", Quant: "q4_k_m"}},
		{name: "catalog name in another case", in: "LLaDA-8B", want: Ref{Name: "llada-8b", Repo: "mradermacher/LLaDA-8B-Instruct-GGUF"}, str: "llada-8b"},
		{name: "catalog model without a GGUF repository", in: "open-dcoder-0.5b", want: Ref{Name: "open-dcoder-0.5b"}},
		{name: "repository", in: "owner/Model-7B.v1-GGUF", want: Ref{Repo: "owner/Model-7B.v1-GGUF"}},
		{name: "repository with a tag", in: "owner/repo:Q8_0", want: Ref{Repo: "owner/repo", Quant: "Q8_0"}},
		{name: "exact file", in: "owner/repo/model.Q4_K_M.gguf", want: Ref{Repo: "owner/repo", File: "model.Q4_K_M.gguf"}},
		{name: "exact file in a folder", in: "owner/repo/q4/model.GGUF", want: Ref{Repo: "owner/repo", File: "q4/model.GGUF"}},
		{name: "spaces around", in: "  owner/repo  ", want: Ref{Repo: "owner/repo"}, str: "owner/repo"},
		{name: "empty", in: "", err: "empty"},
		{name: "unknown name", in: "gpt-5", err: `"gpt-5" is not a catalog name (dream-coder-7b, `},
		{name: "three parts, not a gguf", in: "a/b/c", err: "want OWNER/REPO"},
		{name: "empty owner", in: "/repo", err: "where a letter or digit belongs"},
		{name: "double dash", in: "owner/re--po", err: "where a letter or digit belongs"},
		{name: "bad character", in: "owner/re po", err: "character ' '"},
		{name: "bad tag", in: "owner/repo:Q4 K", err: "quantization"},
		{name: "empty tag", in: "owner/repo:", err: "quantization"},
		{name: "path escape", in: "owner/repo/../x.gguf", err: "file path"},
		{name: "relative path of a missing file", in: "./x.gguf", err: "a Hub file is OWNER/REPO/FILE.gguf"},
		{name: "a file in a folder, not a repository", in: "models/x.gguf", err: "a Hub file is OWNER/REPO/FILE.gguf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRef(tt.in)
			if tt.err != "" {
				if !errors.Is(err, ErrBadRef) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseRef(%q) = %+v, %v; want an ErrBadRef saying %q", tt.in, got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseRef(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
			str := tt.str
			if str == "" {
				str = tt.in
			}
			if got.String() != str {
				t.Errorf("String() = %q, want %q", got.String(), str)
			}
		})
	}
}

// TestPick checks the choice of file against llama.cpp's -hf rules.
func TestPick(t *testing.T) {
	tests := []struct {
		name  string
		paths []string
		ref   Ref
		want  string
		err   error
	}{
		{name: "Q4_K_M before Q8_0 without a tag", paths: []string{"m.F16.gguf", "m.Q8_0.gguf", "m.Q4_K_M.gguf"}, want: "m.Q4_K_M.gguf"},
		{name: "Q8_0 when there is no Q4_K_M", paths: []string{"m.F16.gguf", "m.Q8_0.gguf", "m.Q6_K.gguf"}, want: "m.Q8_0.gguf"},
		{name: "the first model file when there is neither", paths: []string{"README.md", "mmproj-m.gguf", "m.Q6_K.gguf", "m.Q5_K_M.gguf"}, want: "m.Q6_K.gguf"},
		{name: "a tag in any case", paths: []string{"m-q4_k_m.gguf", "m-q6_k.gguf"}, ref: Ref{Quant: "Q6_K"}, want: "m-q6_k.gguf"},
		{name: "a tag is followed by '.' or '-'", paths: []string{"m.Q4_K_M_L.gguf", "m.Q4_K_M-imat.gguf"}, ref: Ref{Quant: "q4_k_m"}, want: "m.Q4_K_M-imat.gguf"},
		{name: "i1 quants of mradermacher", paths: []string{"m.i1-IQ4_XS.gguf", "m.i1-Q4_K_M.gguf"}, want: "m.i1-Q4_K_M.gguf"},
		{name: "a projector is never the model", paths: []string{"mmproj-Q4_K_M.gguf", "m.Q4_K_M.gguf"}, want: "m.Q4_K_M.gguf"},
		{name: "no file with the tag", paths: []string{"m.Q8_0.gguf"}, ref: Ref{Quant: "Q2_K"}, err: ErrNotFound},
		{name: "no GGUF at all", paths: []string{"model.safetensors"}, err: ErrNotFound},
		{name: "exact file in any case", paths: []string{"Sub/M.Q8_0.gguf"}, ref: Ref{File: "sub/m.q8_0.gguf"}, want: "Sub/M.Q8_0.gguf"},
		{name: "a split file is refused", paths: []string{"m.Q8_0-00002-of-00002.gguf", "m.Q8_0-00001-of-00002.gguf"}, ref: Ref{Quant: "Q8_0"}, err: ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.ref.Repo = "o/r"
			got, err := choose(tt.ref, tt.paths)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("choose = %q, %v; want %v", got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("choose = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestQuantOf(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"mradermacher", "LLaDA-8B-Instruct.Q4_K_M.gguf", "Q4_K_M"},
		{"gguf-my-repo", "rnd1-base-0910-q8_0.gguf", "Q8_0"},
		{"imatrix", "m.i1-IQ4_XS.gguf", "IQ4_XS"},
		{"split", "m-Q8_0-00001-of-00003.gguf", "Q8_0"},
		{"in a folder", "Q4/m-F16.gguf", "F16"},
		{"none", "model.gguf", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := quantOf(tt.in); got != tt.want {
				t.Errorf("quantOf(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
