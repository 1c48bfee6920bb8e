package train

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/dfill/dfill/engine"
)

// Throughput is what Measure reports.
type Throughput struct {
	Params       int     `json:"params"`
	Steps        int     `json:"steps"`
	Batch        int     `json:"batch"`
	Seq          int     `json:"seq"`
	MsPerStep    float64 `json:"ms_per_step"`
	TokensPerSec float64 `json:"tokens_per_sec"`
	// TokensPerHour is how many tokens an hour of training at this rate
	// runs through the model.
	TokensPerHour float64 `json:"tokens_per_hour"`
	// CPUMsPerStep is the CPU time (all threads) one step took, and
	// TokensPerCPUSec the tokens per CPU-second: on a machine shared with
	// other work these predict an idle machine's speed better than the
	// wall clock does (0 where CPU time is not measured).
	CPUMsPerStep    float64 `json:"cpu_ms_per_step"`
	TokensPerCPUSec float64 `json:"tokens_per_cpu_sec"`
}

// Measure times steps training steps (after one untimed warm-up step) of a
// model of opt.Shape on random tokens of a random vocabulary of
// opt.Shape.Vocab tokens (0: 4096), to size a model to a time budget
// without reading a corpus.
func Measure(opt Options, steps int) (Throughput, error) {
	if steps < 1 {
		return Throughput{}, fmt.Errorf("%w: %d steps to measure", ErrBadOptions, steps)
	}
	if opt.Shape.Vocab == 0 {
		opt.Shape.Vocab = 4096
	}
	vocab, err := engine.RandomVocab(opt.Shape.Vocab)
	if err != nil {
		return Throughput{}, err
	}
	rng := rand.New(rand.NewPCG(opt.Seed, 1))
	data := make([]int32, 16*opt.Shape.Seq*max(opt.Batch, 1))
	for i := range data {
		data[i] = int32(rng.IntN(256))
	}
	opt.Steps = steps + 1
	opt.EvalEvery, opt.CheckpointEvery, opt.OutDir, opt.Progress = 0, 0, "", nil
	tr, err := New(opt, vocab, Data{Train: data})
	if err != nil {
		return Throughput{}, err
	}
	defer tr.Close()
	if _, err := tr.Step(); err != nil {
		return Throughput{}, err
	}
	start, cpu0 := time.Now(), cpuTime()
	tokens := 0
	for range steps {
		st, err := tr.Step()
		if err != nil {
			return Throughput{}, err
		}
		tokens += st.Tokens
	}
	el := time.Since(start).Seconds()
	cpu := (cpuTime() - cpu0).Seconds()
	th := Throughput{
		Params: tr.model.Shape.Params(), Steps: steps, Batch: opt.Batch, Seq: opt.Shape.Seq,
		MsPerStep: 1000 * el / float64(steps), TokensPerSec: float64(tokens) / el,
		TokensPerHour: 3600 * float64(tokens) / el,
	}
	if cpu > 0 {
		th.CPUMsPerStep = 1000 * cpu / float64(steps)
		th.TokensPerCPUSec = float64(tokens) / cpu
	}
	return th, nil
}
