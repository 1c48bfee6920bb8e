package hub

import "strings"

// Model is one diffusion coder the catalog knows: where its weights and GGUF
// conversions live, what it is, how it expects an infill prompt and how its
// authors sample it. Numbers and names that could not be confirmed from the
// model card or the Hub are left zero and said in Unverified.
type Model struct {
	Name     string            `json:"name"`                // catalog name, as typed: "llada-8b"
	Title    string            `json:"title"`               // the model's own name
	Repo     string            `json:"repo"`                // the authors' checkpoint on the Hub (safetensors)
	GGUFRepo string            `json:"gguf_repo,omitempty"` // a Hub repository of GGUF conversions; "" when none is known
	Files    map[string]string `json:"files,omitempty"`     // quantization tag (upper case) → file in GGUFRepo, where seen; others resolve by tag
	Arch     string            `json:"arch"`                // general.architecture of its GGUF: dream, llada, llada-moe, rnd1
	Params   Params            `json:"params"`              // parameter count
	Context  int               `json:"context,omitempty"`   // context length in tokens; 0 where not confirmed
	License  string            `json:"license,omitempty"`   // the license the model card declares; "" where not confirmed
	Infill   string            `json:"infill"`              // the prompt layout it expects for infill
	Defaults Defaults          `json:"defaults"`            // sampler settings its authors recommend
	// Unverified says what of the entry could not be confirmed from the
	// model card or the Hub; "" when everything was.
	Unverified string `json:"unverified,omitempty"`
}

// Params is a model's parameter count, in billions.
type Params struct {
	Total  float64 `json:"total_b"`  // every parameter
	Active float64 `json:"active_b"` // used per token: fewer than Total for a mixture of experts
}

// Defaults are the sampler settings a model's authors recommend; they are a
// model's settings when it is loaded, unless the user sets them. Names are
// the engine's: schedules timestep, blocks, threshold; scores confidence,
// margin, entropy. A zero field means the engine's own default.
type Defaults struct {
	Steps       int     `json:"steps"`        // denoising steps for a span; 0: one per token, as every card here does
	Schedule    string  `json:"schedule"`     // how many positions a step commits: timestep (Dream), blocks (LLaDA)
	Score       string  `json:"score"`        // which positions a step commits first
	BlockLength int     `json:"block_length"` // tokens per block for the blocks schedule; 0: one block
	Threshold   float64 `json:"threshold"`    // confidence threshold for the threshold schedule
	Temperature float64 `json:"temperature"`  // 0: greedy
	TopP        float64 `json:"top_p"`        // nucleus sampling; 0: off
}

// Layouts of an infill prompt.
const (
	// infillPlain is the layout of every model here: the prefix, the span
	// of mask tokens and the suffix, with no FIM tokens; the model's
	// tokenizer supplies the mask token.
	infillPlain = "plain: prefix, [MASK]×n, suffix (no FIM tokens)"
)

// dreamSampler is Dream's diffusion_generate as Dream-Coder and DiffuCoder
// call it in their cards: one token per step (steps = max_new_tokens),
// alg="entropy" (lowest entropy first, on Dream's timestep schedule).
func dreamSampler(temperature, topP float64) Defaults {
	return Defaults{Schedule: "timestep", Score: "entropy", Temperature: temperature, TopP: topP}
}

// lladaSampler is LLaDA's generate() as its card and repository call it:
// steps=128 for gen_length=128 (one token per step), block_length=32,
// temperature=0, remasking='low_confidence'.
var lladaSampler = Defaults{Schedule: "blocks", Score: "confidence", BlockLength: 32}

// Catalog lists the known diffusion coders. GGUF repositories and file
// names come from the Hub pages and third-party notes that name them; a
// quantization not in Files resolves by tag in GGUFRepo, as -hf does.
var Catalog = []Model{
	{
		Name:     "dream-coder-7b",
		Title:    "Dream-Coder v0 Instruct 7B",
		Repo:     "Dream-org/Dream-Coder-v0-Instruct-7B",
		GGUFRepo: "mradermacher/Dream-Coder-v0-Instruct-7B-GGUF",
		Arch:     "dream",
		Params:   Params{Total: 7.6, Active: 7.6},
		Infill:   infillPlain,
		// The card's quickstart: steps=768 for max_new_tokens=768,
		// temperature=0.1, top_p=0.95, alg="entropy", alg_temp=0.
		Defaults: dreamSampler(0.1, 0.95),
		Unverified: "GGUF repository named by third-party notes, its file names not seen (quantizations resolve by tag); " +
			"license and context length not read from the card; parameters those of its Qwen2.5-Coder-7B base",
	},
	{
		Name:     "diffucoder-7b",
		Title:    "DiffuCoder 7B cpGRPO",
		Repo:     "apple/DiffuCoder-7B-cpGRPO",
		GGUFRepo: "Mungert/DiffuCoder-7B-cpGRPO-GGUF",
		Arch:     "dream",
		Params:   Params{Total: 7.6, Active: 7.6},
		License:  "apache-2.0",
		Infill:   infillPlain,
		// The card: TOKEN_PER_STEP=1 (steps = max_new_tokens = 256),
		// temperature=0.4, top_p=0.95, alg="entropy", alg_temp=0.
		Defaults: dreamSampler(0.4, 0.95),
		Unverified: "GGUF repository named by third-party notes, its file names not seen (quantizations resolve by tag); " +
			"license read from a copy of the card; context length not confirmed; parameters those of its Qwen2.5-Coder-7B base",
	},
	{
		Name:     "llada-8b",
		Title:    "LLaDA 8B Instruct",
		Repo:     "GSAI-ML/LLaDA-8B-Instruct",
		GGUFRepo: "mradermacher/LLaDA-8B-Instruct-GGUF",
		Files:    map[string]string{"Q4_K_M": "LLaDA-8B-Instruct.Q4_K_M.gguf"},
		Arch:     "llada",
		Params:   Params{Total: 8, Active: 8},
		Context:  4096,
		License:  "mit",
		Infill:   infillPlain,
		Defaults: lladaSampler,
		Unverified: "context length is the paper's pre-training length, not read from config.json; " +
			"other quantizations resolve by tag",
	},
	{
		Name:     "llada-1.5",
		Title:    "LLaDA 1.5",
		Repo:     "GSAI-ML/LLaDA-1.5",
		GGUFRepo: "mradermacher/LLaDA-1.5-GGUF",
		Files:    map[string]string{"Q2_K": "LLaDA-1.5.Q2_K.gguf"},
		Arch:     "llada",
		Params:   Params{Total: 8, Active: 8},
		Context:  4096,
		License:  "mit",
		Infill:   infillPlain,
		Defaults: lladaSampler,
		Unverified: "sampler settings, license and context length assumed those of LLaDA 8B, from which it is trained; " +
			"other quantizations resolve by tag",
	},
	{
		Name:     "llada-moe-7b-a1b",
		Title:    "LLaDA-MoE 7B-A1B Instruct",
		Repo:     "inclusionAI/LLaDA-MoE-7B-A1B-Instruct",
		GGUFRepo: "mradermacher/LLaDA-MoE-7B-A1B-Instruct-GGUF",
		Files:    map[string]string{"Q8_0": "LLaDA-MoE-7B-A1B-Instruct.Q8_0.gguf"},
		Arch:     "llada-moe",
		Params:   Params{Total: 7, Active: 1.4},
		License:  "apache-2.0",
		Infill:   infillPlain,
		Defaults: lladaSampler,
		Unverified: "sampler settings are LLaDA's generate(), not read from this card; context length not confirmed; " +
			"license from third-party notes; other quantizations resolve by tag",
	},
	{
		Name:     "rnd1-30b-a3b",
		Title:    "RND1 Base 30B-A3B (0910)",
		Repo:     "radicalnumerics/RND1-Base-0910",
		GGUFRepo: "vikramkr/RND1-Base-0910-Q8_0-GGUF",
		Files:    map[string]string{"Q8_0": "rnd1-base-0910-q8_0.gguf"},
		Arch:     "rnd1",
		Params:   Params{Total: 30.5, Active: 3.3},
		Infill:   infillPlain,
		// The card: num_diffusion_steps=256 for max_new_tokens=256,
		// temperature=0.01; it names no unmasking order.
		Defaults: Defaults{Temperature: 0.01},
		Unverified: "the only GGUF known is one user's Q8_0 conversion; the card names no unmasking order, so the engine's default is used; " +
			"parameters those of its Qwen3-30B-A3B base; license and context length not confirmed",
	},
	{
		Name:   "open-dcoder-0.5b",
		Title:  "Open-dCoder 0.5B",
		Repo:   "fredzzp/open-dcoder-0.5B",
		Arch:   "dream",
		Params: Params{Total: 0.5, Active: 0.5},
		Infill: infillPlain,
		Unverified: "no GGUF repository known (convert the checkpoint with llama.cpp's convert_hf_to_gguf.py); " +
			"sampler settings not confirmed from the card (a third-party copy of its infill evaluation uses 64 steps, temperature 0.6, alg p2); " +
			"license and context length not confirmed; parameters those of its Qwen2.5-Coder-0.5B base",
	},
}

// Lookup returns the catalog entry called name, in any case.
func Lookup(name string) (Model, bool) {
	for _, m := range Catalog {
		if strings.EqualFold(m.Name, name) {
			return m, true
		}
	}
	return Model{}, false
}

// LookupRepo returns the catalog entry whose GGUF repository or checkpoint
// is repo, in any case.
func LookupRepo(repo string) (Model, bool) {
	if repo == "" {
		return Model{}, false
	}
	for _, m := range Catalog {
		if strings.EqualFold(m.GGUFRepo, repo) || strings.EqualFold(m.Repo, repo) {
			return m, true
		}
	}
	return Model{}, false
}

// Names returns the catalog's names, in its order.
func Names() []string {
	names := make([]string, len(Catalog))
	for i, m := range Catalog {
		names[i] = m.Name
	}
	return names
}
