package convert

import "testing"

// TestMaskToken checks which mask token id each family writes: llama.cpp's
// hard-coded 156895 for LLaDA-MoE when the vocabulary holds it, else
// config.json's mask_token_id before the tokenizer's mask token (LLaDA-MoE,
// RND1), or the tokenizer's first (Dream, LLaDA: SpecialVocab's order).
func TestMaskToken(t *testing.T) {
	tests := []struct {
		name  string
		fam   *family
		found int32 // the tokenizer's mask token (-1: none)
		hp    hparams
		vocab int
		want  int32
	}{
		{name: "llada-moe real vocabulary", fam: &lladaMoE, found: 5, hp: hparams{"mask_token_id": 7.0}, vocab: 157184, want: 156895},
		{name: "llada-moe real vocabulary, no mask named", fam: &lladaMoE, found: -1, hp: hparams{}, vocab: 157184, want: 156895},
		{name: "llada-moe small vocabulary, config", fam: &lladaMoE, found: 5, hp: hparams{"mask_token_id": 7.0}, vocab: 272, want: 7},
		{name: "llada-moe small vocabulary, tokenizer", fam: &lladaMoE, found: 5, hp: hparams{}, vocab: 272, want: 5},
		{name: "llada-moe vocabulary one short", fam: &lladaMoE, found: 5, hp: hparams{}, vocab: 156895, want: 5},
		{name: "rnd1 config first", fam: &rnd1, found: 5, hp: hparams{"mask_token_id": 7.0}, vocab: 272, want: 7},
		{name: "rnd1 config outside the vocabulary", fam: &rnd1, found: 5, hp: hparams{"mask_token_id": 300.0}, vocab: 272, want: 5},
		{name: "rnd1 no mask", fam: &rnd1, found: -1, hp: hparams{}, vocab: 272, want: -1},
		{name: "dream tokenizer first", fam: &dream, found: 5, hp: hparams{"mask_token_id": 7.0}, vocab: 272, want: 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.fam.maskToken(tc.found, tc.hp, tc.vocab); got != tc.want {
				t.Errorf("maskToken(%d, %v, %d) = %d, want %d", tc.found, tc.hp, tc.vocab, got, tc.want)
			}
		})
	}
}
