package train

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/dfill/dfill/engine"
	"github.com/dfill/dfill/engine/gguf"
	"github.com/dfill/dfill/engine/kernel"
	"github.com/dfill/dfill/engine/tokenizer"
)

// A checkpoint is one GGUF file: the model's metadata and vocabulary as the
// exported model has them, the train.* keys below, and three F32 tensors
// per trainer tensor: "w.NAME" (the weight), "m.NAME" and "v.NAME" (AdamW's
// moments), NAME being the trainer's (fused) tensor name.
const (
	keyStep = "train.step" // uint64: steps taken
	keyRNG  = "train.rng"  // []uint8: the data sampler's PCG state
	keyTied = "train.tied" // bool: no separate output matrix
)

// Checkpoint is a training state read back by LoadCheckpoint.
type Checkpoint struct {
	Shape Shape
	Vocab tokenizer.Config
	Step  int

	rng     []byte
	w, m, v []float32
}

// SaveCheckpoint writes the trainer's state to path (through a temporary
// file renamed into place, so a crash never leaves half a checkpoint).
func (t *Trainer) SaveCheckpoint(path string) error {
	rng, err := t.pcg.MarshalBinary()
	if err != nil {
		return fmt.Errorf("train: checkpoint %s: %w", path, err)
	}
	meta := append(engine.Metadata(t.EngineConfig(), t.vocab),
		gguf.KV{Key: keyStep, Value: gguf.Val(uint64(t.step))},
		gguf.KV{Key: keyRNG, Value: gguf.Val(rng)},
		gguf.KV{Key: keyTied, Value: gguf.Val(t.model.Shape.Tied)})
	specs := t.model.W.specs
	sources := []*Params[float32]{t.model.W, t.optim.m, t.optim.v}
	var ts []gguf.TensorSpec
	for _, prefix := range []string{"w.", "m.", "v."} {
		for _, s := range specs {
			dims := []uint64{uint64(s.cols), uint64(s.rows)}
			if s.cols == 1 {
				dims = dims[1:]
			}
			ts = append(ts, gguf.TensorSpec{Name: prefix + s.name, Type: gguf.TypeF32, Dims: dims})
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("train: checkpoint: %w", err)
	}
	defer os.Remove(tmp.Name())
	err = gguf.WriteStream(tmp, meta, ts, func(i int, dst []byte) error {
		p, s := sources[i/len(specs)], specs[i%len(specs)]
		q, err := kernel.Quantize(gguf.TypeF32, p.Data[s.off:s.off+s.rows*s.cols])
		copy(dst, q)
		return err
	})
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("train: checkpoint %s: %w", path, err)
	}
	return nil
}

// LoadCheckpoint reads a checkpoint written by SaveCheckpoint.
func LoadCheckpoint(path string) (*Checkpoint, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: checkpoint %s: %s", ErrBadOptions, path, fmt.Sprintf(format, a...))
	}
	ck := &Checkpoint{}
	s := &ck.Shape
	for key, dst := range map[string]*int{
		"llada.block_count": &s.Layers, "llada.embedding_length": &s.Dim, "llada.attention.head_count": &s.Heads,
		"llada.attention.head_count_kv": &s.KVHeads, "llada.feed_forward_length": &s.FFN,
		"llada.context_length": &s.Seq, "llada.vocab_size": &s.Vocab, keyStep: &ck.Step,
	} {
		v, ok := f.Uint(key)
		if !ok || v > 1<<40 {
			return nil, bad("missing or out-of-range %s", key)
		}
		*dst = int(v)
	}
	s.RopeBase, _ = f.Float("llada.rope.freq_base")
	s.Eps, _ = f.Float("llada.attention.layer_norm_rms_epsilon")
	s.Tied, _ = f.Bool(keyTied)
	*s = s.withDefaults()
	if err := s.validate(); err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	if v, ok := f.Lookup(keyRNG); ok {
		ck.rng, _ = v.Any().([]uint8)
	}
	if ck.rng == nil {
		return nil, bad("missing %s", keyRNG)
	}
	ck.rng = bytes.Clone(ck.rng)

	vocab, err := engine.VocabFromGGUF(f)
	if err != nil {
		return nil, bad("%v", err)
	}
	v := &ck.Vocab
	*v = vocab
	v.Tokens, v.Types, v.Merges = slices.Clone(v.Tokens), slices.Clone(v.Types), slices.Clone(v.Merges)
	*v = v.WithSpecialIDs()
	if len(v.Tokens) != s.Vocab || v.Mask < 0 || v.EOS < 0 {
		return nil, bad("vocabulary of %d tokens (mask %d, eos %d) for a model of %d", len(v.Tokens), v.Mask, v.EOS, s.Vocab)
	}

	specs := s.tensors()
	n := NewParams[float32](*s)
	for _, dst := range []*[]float32{&ck.w, &ck.m, &ck.v} {
		*dst = make([]float32, len(n.Data))
	}
	for pi, prefix := range []string{"w.", "m.", "v."} {
		dst := [][]float32{ck.w, ck.m, ck.v}[pi]
		for _, sp := range specs {
			info, ok := f.Tensor(prefix + sp.name)
			if !ok || info.Type != gguf.TypeF32 || int(info.Elements()) != sp.rows*sp.cols {
				return nil, bad("missing or misshapen F32 tensor %s%s", prefix, sp.name)
			}
			if err := kernel.Dequantize(gguf.TypeF32, info.Data, dst[sp.off:sp.off+sp.rows*sp.cols]); err != nil {
				return nil, bad("tensor %s%s: %v", prefix, sp.name, err)
			}
		}
	}
	return ck, nil
}

// LoadModel reads the weights of a model dfill exported (an llada GGUF of
// any matrix type) as a Checkpoint with no optimizer state, for
// Trainer.InitWeights: a run that continues training it.
func LoadModel(path string) (*Checkpoint, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: model %s: %s", ErrBadOptions, path, fmt.Sprintf(format, a...))
	}
	ck := &Checkpoint{}
	s := &ck.Shape
	for key, dst := range map[string]*int{
		"llada.block_count": &s.Layers, "llada.embedding_length": &s.Dim, "llada.attention.head_count": &s.Heads,
		"llada.attention.head_count_kv": &s.KVHeads, "llada.feed_forward_length": &s.FFN,
		"llada.context_length": &s.Seq,
	} {
		v, ok := f.Uint(key)
		if !ok || v > 1<<40 {
			return nil, bad("missing or out-of-range %s (a model dfill trained?)", key)
		}
		*dst = int(v)
	}
	s.RopeBase, _ = f.Float("llada.rope.freq_base")
	s.Eps, _ = f.Float("llada.attention.layer_norm_rms_epsilon")
	_, hasOut := f.Tensor("output.weight")
	s.Tied = !hasOut
	vocab, err := engine.VocabFromGGUF(f)
	if err != nil {
		return nil, bad("%v", err)
	}
	v := &ck.Vocab
	*v = vocab
	v.Tokens, v.Types, v.Merges = slices.Clone(v.Tokens), slices.Clone(v.Types), slices.Clone(v.Merges)
	*v = v.WithSpecialIDs()
	s.Vocab = len(v.Tokens)
	*s = s.withDefaults()
	if err := s.validate(); err != nil {
		return nil, fmt.Errorf("model %s: %w", path, err)
	}
	if v.Mask < 0 || v.EOS < 0 {
		return nil, bad("the vocabulary has no mask or EOS token")
	}
	p := NewParams[float32](*s)
	for name, dst := range Tensors(*s, p) {
		info, ok := f.Tensor(name)
		if !ok || int(info.Elements()) != len(dst) {
			return nil, bad("missing or misshapen tensor %s", name)
		}
		if err := kernel.Dequantize(info.Type, info.Data, dst); err != nil {
			return nil, bad("tensor %s: %v", name, err)
		}
	}
	ck.w = p.Data
	ck.m, ck.v = make([]float32, len(p.Data)), make([]float32, len(p.Data))
	return ck, nil
}

// Restore puts the trainer in the state of ck: weights, optimizer moments,
// step count and data sampler. The trainer must have ck's shape and
// vocabulary (New with ck.Vocab and ck.Shape).
func (t *Trainer) Restore(ck *Checkpoint) error {
	a, b := t.model.Shape, ck.Shape
	a.Eps, b.Eps = float64(float32(a.Eps)), float64(float32(b.Eps)) // the file holds a float32
	if a != b {
		return fmt.Errorf("%w: checkpoint shape %+v, trainer %+v", ErrBadOptions, ck.Shape, t.model.Shape)
	}
	if !slices.Equal(t.vocab.Tokens, ck.Vocab.Tokens) {
		return fmt.Errorf("%w: the checkpoint's vocabulary differs from the trainer's", ErrBadOptions)
	}
	if err := t.pcg.UnmarshalBinary(ck.rng); err != nil {
		return fmt.Errorf("train: checkpoint rng: %w", err)
	}
	copy(t.model.W.Data, ck.w)
	copy(t.optim.m.Data, ck.m)
	copy(t.optim.v.Data, ck.v)
	t.step, t.optim.step = ck.Step, ck.Step
	return nil
}
