package train

import (
	"bytes"
	"fmt"
	"maps"
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
	r := reader{f: f, what: "checkpoint " + path}
	tied, _ := f.Bool(keyTied)
	ck, err := r.model(tied)
	if err != nil {
		return nil, err
	}
	step, ok := f.Uint(keyStep)
	if !ok || step > 1<<40 {
		return nil, r.errorf("missing or out-of-range %s", keyStep)
	}
	ck.Step = int(step)
	if v, ok := f.Lookup(keyRNG); ok {
		ck.rng, _ = v.Any().([]uint8)
	}
	if ck.rng == nil {
		return nil, r.errorf("missing %s", keyRNG)
	}
	ck.rng = bytes.Clone(ck.rng)

	n := ck.Shape.Params()
	ck.w, ck.m, ck.v = make([]float32, n), make([]float32, n), make([]float32, n)
	dst := map[string][]float32{}
	for i, prefix := range []string{"w.", "m.", "v."} {
		data := [][]float32{ck.w, ck.m, ck.v}[i]
		for _, sp := range ck.Shape.tensors() {
			dst[prefix+sp.name] = data[sp.off : sp.off+sp.rows*sp.cols]
		}
	}
	if err := r.tensors(dst, true); err != nil {
		return nil, err
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
	r := reader{f: f, what: "model " + path}
	_, hasOut := f.Tensor("output.weight")
	ck, err := r.model(!hasOut)
	if err != nil {
		return nil, err
	}
	p := NewParams[float32](ck.Shape)
	if err := r.tensors(Tensors(ck.Shape, p), false); err != nil {
		return nil, err
	}
	ck.w = p.Data
	ck.m, ck.v = make([]float32, len(p.Data)), make([]float32, len(p.Data))
	return ck, nil
}

// reader reads the files the trainer starts from: its checkpoints and the
// models it exported.
type reader struct {
	f    *gguf.File
	what string // "checkpoint PATH" or "model PATH", for errors
}

func (r reader) errorf(format string, a ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrBadOptions, r.what, fmt.Sprintf(format, a...))
}

// model reads what every such file holds: the model's hyperparameters, as
// the engine reads them (engine.ConfigFromGGUF), and its vocabulary, which
// must have mask and EOS tokens; tied says whether the output projection is
// the embedding. It returns them as a Checkpoint with no weights.
func (r reader) model(tied bool) (*Checkpoint, error) {
	cfg, err := engine.ConfigFromGGUF(r.f, r.what)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadOptions, err)
	}
	vocab, err := tokenizer.FromGGUF(r.f)
	if err != nil {
		return nil, r.errorf("%v", err)
	}
	vocab.Tokens, vocab.Types, vocab.Merges = slices.Clone(vocab.Tokens), slices.Clone(vocab.Types), slices.Clone(vocab.Merges)
	vocab = vocab.WithSpecialIDs()
	if vocab.Mask < 0 || vocab.EOS < 0 {
		return nil, r.errorf("the vocabulary has no mask or EOS token")
	}
	s, err := shapeOf(cfg, len(vocab.Tokens), tied)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.what, err)
	}
	return &Checkpoint{Shape: s, Vocab: vocab}, nil
}

// tensors decodes the tensors named by dst's keys into their slices. Each
// must hold exactly as many elements as its slice, and with onlyF32 be
// F32, as checkpoints store them.
func (r reader) tensors(dst map[string][]float32, onlyF32 bool) error {
	for _, name := range slices.Sorted(maps.Keys(dst)) {
		data := dst[name]
		info, ok := r.f.Tensor(name)
		if !ok || int(info.Elements()) != len(data) || onlyF32 && info.Type != gguf.TypeF32 {
			return r.errorf("missing or misshapen tensor %s", name)
		}
		if err := kernel.Dequantize(info.Type, info.Data, data); err != nil {
			return r.errorf("tensor %s: %v", name, err)
		}
	}
	return nil
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
