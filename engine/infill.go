package engine

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
)

// Prompt is the text around the span to fill.
type Prompt struct {
	Prefix, Suffix string
}

// Candidate is one filled span.
type Candidate struct {
	Text       string  // the span's text, trailing EOS/pad stripped
	Tokens     []int32 // the span's tokens as denoised, before stripping
	Length     int     // the span length it was denoised with
	Confidence float64 // mean probability of the committed tokens
	Steps      int     // denoising steps taken
	// Probs and FixedAt are, for each position of Tokens, the
	// probability its token had when it was committed and the step
	// (1-based) it was committed at: what a score of the candidate's
	// quality reads (see completion.Signals).
	Probs   []float64
	FixedAt []int
	// Content is how many of Tokens come before the trailing EOS/pad run
	// (the positions Text was decoded from, special tokens included).
	Content int
}

// Step is one denoising step of one span, for streaming.
type Step struct {
	Span        int // index into Options.Lengths
	Step, Steps int // 1-based step and the planned number of steps
	Tokens      []int32
	Masked      []bool
	Text        string // the span's text, each masked position shown as MaskGlyph
}

// MaskGlyph stands for a still-masked position in Step.Text.
const MaskGlyph = "░"

// Infill tokenizes p and fills a span of each of opt.Lengths between the
// prefix and the suffix. onStep, if not nil, is called after every step.
// ctx is checked between steps and layers.
func (m *Model) Infill(ctx context.Context, p Prompt, opt Options, onStep func(Step)) ([]Candidate, error) {
	prefix := m.Tokenizer.EncodePlain(p.Prefix)
	suffix := m.Tokenizer.EncodePlain(p.Suffix)
	return m.Denoise(ctx, prefix, suffix, opt, onStep)
}

// Denoise fills spans between prefix and suffix token ids; see Infill.
func (m *Model) Denoise(ctx context.Context, prefix, suffix []int32, opt Options, onStep func(Step)) ([]Candidate, error) {
	var step func(int, Step)
	if onStep != nil {
		step = func(_ int, s Step) { onStep(s) }
	}
	out, errs, err := m.DenoiseBatch(ctx, []Job{{Prefix: prefix, Suffix: suffix, Options: opt}}, step)
	if err != nil {
		return nil, err
	}
	return out[0], errs[0]
}

// Job is one prompt of DenoiseBatch: its token ids, its options, and a
// context that cancels it alone (nil: only the batch's).
type Job struct {
	Ctx            context.Context
	Prefix, Suffix []int32
	Options        Options
}

// DenoiseBatch fills the spans of several prompts together: each step is
// one forward over the active spans of every job (the prompts' canvases
// side by side, each attending to itself), so concurrent requests share
// the passes over the weights. It returns each job's candidates and error:
// a job whose options are refused, or whose Ctx is done, fails alone at
// its next step and the others go on. err is for the batch: ctx done, or a
// forward that failed. onStep, if not nil, is called with the job's index
// after each of its steps.
func (m *Model) DenoiseBatch(ctx context.Context, jobs []Job, onStep func(job int, s Step)) (cands [][]Candidate, errs []error, err error) {
	c := m.Config
	cands, errs = make([][]Candidate, len(jobs)), make([]error, len(jobs))
	var runs []*run
	owner := map[*run]int{}
	for j, job := range jobs {
		jr, err := m.runsOf(job)
		if err != nil {
			errs[j] = err
			continue
		}
		for _, r := range jr {
			owner[r] = j
		}
		runs = append(runs, jr...)
	}

	ws := m.workspace()
	defer m.workspaces.put(ws)
	defer func() {
		for _, r := range runs {
			if r.seq.kv != nil {
				m.kvBuffers.put(r.seq.kv)
			}
			if r.dev != nil {
				r.dev.Close()
			}
		}
	}()
	if m.accelerated() {
		for _, r := range runs {
			if j := owner[r]; errs[j] == nil {
				if r.dev, err = m.accel.NewCanvas(r.seq.tokens); err != nil {
					errs[j] = err
				}
			}
		}
	}
	for {
		var active []*run
		var passes []pass
		for _, r := range runs {
			j := owner[r]
			if errs[j] == nil && jobs[j].Ctx != nil && jobs[j].Ctx.Err() != nil {
				errs[j] = jobs[j].Ctx.Err()
			}
			if errs[j] == nil && !r.done() {
				active = append(active, r)
				passes = append(passes, r.plan())
			}
		}
		if len(active) == 0 {
			break
		}
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		if m.accelerated() {
			if err := m.stepAccel(ctx, active, passes); err != nil {
				return nil, nil, err
			}
		} else {
			final, err := m.forward(ctx, ws, passes)
			if err != nil {
				return nil, nil, err
			}
			off := 0
			for i, r := range active {
				n := len(passes[i].want)
				r.commit(ws, final[off*c.Dim:(off+n)*c.Dim])
				off += n
			}
		}
		if onStep != nil {
			for _, r := range active {
				onStep(owner[r], r.stepView())
			}
		}
	}

	for _, r := range runs {
		if j := owner[r]; errs[j] == nil {
			cands[j] = append(cands[j], r.candidate())
		}
	}
	return cands, errs, nil
}

// runsOf returns the runs of one job: a span of each of its Lengths, each
// with the prompt cut to its context.
func (m *Model) runsOf(job Job) ([]*run, error) {
	opt, err := job.Options.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := m.checkAccel(opt); err != nil {
		return nil, err
	}
	c := m.Config
	prefix, suffix := job.Prefix, job.Suffix
	if bos := m.Tokenizer.BOS(); bos >= 0 && (m.Tokenizer.AddBOS() || (c.ShiftLogits && len(prefix) == 0)) {
		prefix = append([]int32{bos}, prefix...)
	}
	if c.ShiftLogits && len(prefix) == 0 {
		// The first span token is predicted by the position before it.
		prefix = []int32{m.Tokenizer.EOS()}
	}
	var runs []*run
	for i, n := range opt.Lengths {
		ctxLen := c.Context
		if len(opt.Contexts) > 0 && opt.Contexts[i] > 0 {
			ctxLen = min(ctxLen, opt.Contexts[i])
		}
		pre, suf := fitContext(prefix, suffix, n, ctxLen)
		if c.ShiftLogits && len(pre) == 0 {
			return nil, fmt.Errorf("%w: span of %d leaves no room for a prefix in a context of %d", ErrBadOptions, n, ctxLen)
		}
		runs = append(runs, newRun(m, i, pre, suf, n, opt))
	}
	return runs, nil
}

// fitContext cuts prefix (from the left) and suffix (from the right) so the
// canvas prefix + n + suffix fits in ctxLen tokens, keeping the tokens
// nearest the span: each side gets half the room, and a side shorter than
// its half leaves the rest to the other.
func fitContext(prefix, suffix []int32, n, ctxLen int) ([]int32, []int32) {
	room := max(ctxLen-n, 0)
	if len(prefix)+len(suffix) <= room {
		return prefix, suffix
	}
	keepPrefix := min(len(prefix), max(room/2, room-len(suffix)))
	keepSuffix := min(len(suffix), room-keepPrefix)
	return prefix[len(prefix)-keepPrefix:], suffix[:keepSuffix]
}

// run is the denoising state of one span.
type run struct {
	m     *Model
	index int
	opt   Options
	seq   *sequence
	dev   AccelCanvas // the canvas on the model's Accelerator, if it has one
	start int         // canvas index of the span's first token
	n     int         // span length

	masked   []bool
	nMasked  int
	prob     []float64 // probability each committed token had when committed
	fixedAt  []int     // the step (1-based) each token was committed at
	step     int       // steps taken
	steps    int       // planned steps
	block    int       // current block
	blocks   int
	perBlock int // steps per block
	inBlock  int // steps taken in the current block
	quota    []int
	rng      *rand.Rand

	// scratch for plan and commit, indexed by span position (stats by
	// candidate)
	cand   []int
	stats  []rowStats
	pred   []int32
	score  []float64
	pchose []float64
}

func newRun(m *Model, index int, prefix, suffix []int32, n int, opt Options) *run {
	tokens := make([]int32, 0, len(prefix)+n+len(suffix))
	tokens = append(tokens, prefix...)
	for i := 0; i < n; i++ {
		tokens = append(tokens, m.Config.MaskID)
	}
	tokens = append(tokens, suffix...)
	seq := &sequence{tokens: tokens} // an Accelerator keeps the cache
	if !m.accelerated() {
		seq = m.newSequence(tokens)
	}
	r := &run{
		m: m, index: index, opt: opt,
		seq:   seq,
		start: len(prefix), n: n,
		masked: make([]bool, n), nMasked: n,
		prob: make([]float64, n), fixedAt: make([]int, n),
		rng:  rand.New(rand.NewPCG(opt.Seed, uint64(index))),
		pred: make([]int32, n), score: make([]float64, n), pchose: make([]float64, n),
	}
	for i := range r.masked {
		r.masked[i] = true
	}
	bs := n
	if opt.BlockSize > 0 && opt.BlockSize < n {
		bs = opt.BlockSize
	}
	r.blocks = (n + bs - 1) / bs
	r.steps = opt.Steps
	if r.steps == 0 {
		r.steps = n
	}
	if opt.Schedule == ScheduleLeftToRight {
		r.steps = n
	}
	r.perBlock = max(1, r.steps/r.blocks)
	r.steps = r.perBlock * r.blocks
	r.startBlock()
	return r
}

func (r *run) blockRange(b int) (lo, hi int) {
	bs := (r.n + r.blocks - 1) / r.blocks
	if r.opt.BlockSize > 0 && r.opt.BlockSize < r.n {
		bs = r.opt.BlockSize
	}
	return b * bs, min(r.n, (b+1)*bs)
}

// startBlock plans the current block's per-step commit counts (LLaDA's
// get_num_transfer_tokens: an even split, the remainder to the first steps).
func (r *run) startBlock() {
	r.inBlock = 0
	lo, hi := r.blockRange(r.block)
	masked := 0
	for i := lo; i < hi; i++ {
		if r.masked[i] {
			masked++
		}
	}
	r.quota = r.quota[:0]
	for s := 0; s < r.perBlock; s++ {
		q := masked / r.perBlock
		if s < masked%r.perBlock {
			q++
		}
		r.quota = append(r.quota, q)
	}
}

func (r *run) done() bool { return r.nMasked == 0 }

// plan says which rows this step runs and which positions need logits
// (r.cand: the masked span positions this step may commit).
func (r *run) plan() pass {
	lo, hi := r.blockRange(r.block)
	full := !r.opt.Cache || r.step == 0 || r.inBlock == 0 ||
		(r.opt.Refresh > 0 && r.step%r.opt.Refresh == 0)
	shift := 0
	if r.m.Config.ShiftLogits {
		shift = 1
	}
	r.cand = r.cand[:0]
	if r.opt.Schedule == ScheduleLeftToRight {
		r.cand = append(r.cand, r.leftmost())
	} else {
		for i := lo; i < hi; i++ {
			if r.masked[i] {
				r.cand = append(r.cand, i)
			}
		}
	}
	p := pass{seq: r.seq, lo: 0, hi: len(r.seq.tokens)}
	if !full {
		p.lo, p.hi = r.start+lo-shift, r.start+hi
		if r.opt.Schedule == ScheduleLeftToRight {
			// As an autoregressive engine runs: the last committed token
			// (to refresh its keys and values) and the position to predict.
			next := r.cand[0]
			p.lo, p.hi = r.start+next-1, r.start+next+1-shift
		}
	}
	for _, i := range r.cand {
		p.want = append(p.want, r.start+i-shift)
	}
	return p
}

func (r *run) leftmost() int {
	for i, m := range r.masked {
		if m {
			return i
		}
	}
	return r.n
}

// commit takes one denoising step's result for the span: it predicts a
// token for each candidate (final holds their hidden states, one row each
// in plan order), unmasks the positions this step's schedule allows, and
// moves the schedule on.
func (r *run) commit(ws *workspace, final []float32) {
	if r.opt.Temperature > 0 {
		r.predictSampled(ws, final)
	} else {
		r.predictGreedy(ws, final)
	}
	r.unmaskBest() // no error without an Accelerator
	r.advance()
}

// predictSampled draws each candidate's token (r.pred), with its
// probability (r.pchose) and score (r.score). Sampling needs whole rows of
// logits, and draws from the run's RNG, so it goes serially in position
// order, a few rows at a time.
func (r *run) predictSampled(ws *workspace, final []float32) {
	vocab := r.m.Config.Vocab
	cand := r.cand
	for lo := 0; lo < len(cand); lo += logitChunk {
		hi := min(lo+logitChunk, len(cand))
		logits := r.m.logits(ws, final, lo, hi)
		for k := lo; k < hi; k++ {
			i := cand[k]
			r.pred[i], r.pchose[i], r.score[i] = r.sample(logits[(k-lo)*vocab:(k-lo+1)*vocab], r.opt.EndAnywhere || r.endAllowed(i))
		}
	}
}

// predictGreedy takes each candidate's most likely token (r.pred), with
// its probability (r.pchose) and score (r.score), from one scan of the
// logits; an end token that could not join the run of end tokens reaching
// the span's end gives way to the second most likely token.
func (r *run) predictGreedy(ws *workspace, final []float32) {
	r.stats = slices.Grow(r.stats[:0], len(r.cand))[:len(r.cand)]
	r.m.scanLogits(ws, final, r.stats)
	r.predictFromStats()
}

// predictFromStats takes each candidate's most likely token from r.stats,
// its softmax statistics in r.cand's order (see predictGreedy).
func (r *run) predictFromStats() {
	cand := r.cand
	endFrom := 0
	if !r.opt.EndAnywhere {
		endFrom = r.endRunStart(cand)
	}
	for k, i := range cand {
		st := &r.stats[k]
		r.pred[i], r.pchose[i] = int32(st.best), st.confidence()
		switch r.opt.Score {
		case ScoreMargin:
			r.score[i] = st.margin()
		case ScoreEntropy:
			r.score[i] = st.negEntropy()
		default:
			r.score[i] = r.pchose[i]
		}
		if r.isEnd(r.pred[i]) && i < endFrom && st.second >= 0 {
			// Only a run of end tokens reaching the span's end may
			// form: take the best other token, at its own confidence.
			p2 := math.Exp(float64(st.secondV)-st.max) / st.sum
			r.pred[i], r.pchose[i], r.score[i] = int32(st.second), p2, p2
			if r.opt.Score == ScoreMargin {
				r.score[i] = p2 - st.confidence()
			}
		}
	}
}

// unmaskBest ranks the candidates by score, most confident first (ties to
// the leftmost position), and writes the predicted tokens of as many as
// the schedule allows (howMany) into the canvas (and the Accelerator's).
func (r *run) unmaskBest() error {
	cand := r.cand
	sort.SliceStable(cand, func(a, b int) bool { return r.score[cand[a]] > r.score[cand[b]] })
	for _, i := range cand[:r.howMany(cand)] {
		r.masked[i] = false
		r.nMasked--
		r.prob[i] = r.pchose[i]
		r.fixedAt[i] = r.step + 1
		r.seq.tokens[r.start+i] = r.pred[i]
		if r.dev != nil {
			if err := r.dev.SetToken(r.start+i, r.pred[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

// advance counts the step taken and moves to the next block when the
// current one is unmasked or has had its steps.
func (r *run) advance() {
	r.step++
	r.inBlock++
	lo, hi := r.blockRange(r.block)
	blockDone := !slices.Contains(r.masked[lo:hi], true)
	if (blockDone || r.inBlock >= r.perBlock) && r.block+1 < r.blocks {
		r.block++
		r.startBlock()
	}
}

// howMany returns how many of the ranked candidates to commit this step.
func (r *run) howMany(ranked []int) int {
	masked := len(ranked)
	if masked == 0 {
		return 0
	}
	if r.opt.Schedule == ScheduleLeftToRight {
		return 1
	}
	if r.inBlock >= r.perBlock-1 {
		return masked // the block's last step commits all that remain
	}
	var k int
	switch r.opt.Schedule {
	case ScheduleTimestep:
		s := r.inBlock
		t := 1 - float64(s)*(1-r.opt.Eps)/float64(r.perBlock)
		next := 1 - float64(s+1)*(1-r.opt.Eps)/float64(r.perBlock)
		k = int(math.Floor(float64(masked) * (1 - next/t)))
	case ScheduleBlocks:
		k = r.quota[r.inBlock]
	case ScheduleThreshold:
		for _, i := range ranked {
			if r.pchose[i] >= r.opt.Threshold {
				k++
			}
		}
	}
	return min(max(k, 1), masked)
}

// sample draws a token from the tempered, top-K / top-P filtered
// distribution of one logits row and scores it under that distribution.
func (r *run) sample(row []float32, endAllowed bool) (tok int32, p, score float64) {
	mask := r.m.Config.MaskID
	type cand struct {
		id int32
		l  float64
	}
	cs := make([]cand, 0, len(row))
	for i, v := range row {
		if int32(i) != mask && (endAllowed || !r.isEnd(int32(i))) {
			cs = append(cs, cand{int32(i), float64(v) / r.opt.Temperature})
		}
	}
	sort.Slice(cs, func(a, b int) bool { return cs[a].l > cs[b].l || (cs[a].l == cs[b].l && cs[a].id < cs[b].id) })
	if r.opt.TopK > 0 && r.opt.TopK < len(cs) {
		cs = cs[:r.opt.TopK]
	}
	probs := make([]float64, len(cs))
	var sum float64
	for i, c := range cs {
		probs[i] = math.Exp(c.l - cs[0].l)
		sum += probs[i]
	}
	for i := range probs {
		probs[i] /= sum
	}
	if r.opt.TopP > 0 && r.opt.TopP < 1 {
		var acc float64
		for i := range probs {
			acc += probs[i]
			if acc >= r.opt.TopP {
				cs, probs = cs[:i+1], probs[:i+1]
				break
			}
		}
		for i := range probs {
			probs[i] /= acc
		}
	}
	u := r.rng.Float64()
	pick := len(cs) - 1
	for i, q := range probs {
		if u < q {
			pick = i
			break
		}
		u -= q
	}
	p = probs[pick]
	switch r.opt.Score {
	case ScoreMargin:
		p2 := 0.0
		if len(probs) > 1 {
			if pick == 0 {
				p2 = probs[1]
			} else {
				p2 = probs[0]
			}
		}
		score = p - p2
	case ScoreEntropy:
		for _, q := range probs {
			if q > 0 {
				score += q * math.Log(q)
			}
		}
	default:
		score = p
	}
	return cs[pick].id, p, score
}

// isEnd reports whether tok is an end token (EOS, PAD or EOT): what the
// positions after the infill's end become.
func (r *run) isEnd(tok int32) bool {
	t := r.m.Tokenizer
	return tok >= 0 && (tok == t.EOS() || tok == t.PAD() || tok == t.EOT())
}

// endAllowed reports whether span position i may become an end token when
// sampling: only when every position after it already is one, so that the
// end tokens form one run reaching the end of the span, as the model was
// trained to fill it. Without this, a weak model commits confident end
// tokens early in the span and leaves the infill empty.
func (r *run) endAllowed(i int) bool {
	span := r.span()
	for j := i + 1; j < r.n; j++ {
		if r.masked[j] || !r.isEnd(span[j]) {
			return false
		}
	}
	return true
}

// endRunStart is endAllowed for greedy steps, where the argmax of every
// candidate is known: the first position of the run, reaching the span's
// end, of positions that are end tokens or whose argmax (r.stats, one per
// candidate in cand) is one. Positions before it may not take an end token.
func (r *run) endRunStart(cand []int) int {
	// r.pred is free until commit fills it: use it for this step's argmax,
	// with -1 for masked positions that are not candidates.
	span := r.span()
	for j := range r.pred {
		r.pred[j] = span[j]
		if r.masked[j] {
			r.pred[j] = -1
		}
	}
	for k, i := range cand {
		r.pred[i] = int32(r.stats[k].best)
	}
	start := r.n
	for j := r.n - 1; j >= 0; j-- {
		tok := r.pred[j]
		if tok < 0 {
			break
		}
		if !r.isEnd(tok) {
			break
		}
		start = j
	}
	return start
}

func (r *run) span() []int32 { return r.seq.tokens[r.start : r.start+r.n] }

func (r *run) stepView() Step {
	tokens := append([]int32(nil), r.span()...)
	masked := append([]bool(nil), r.masked...)
	var b strings.Builder
	var pending []int32
	flush := func() {
		b.WriteString(r.m.Tokenizer.Decode(pending))
		pending = pending[:0]
	}
	for i, t := range tokens {
		if masked[i] {
			flush()
			b.WriteString(MaskGlyph)
			continue
		}
		if !r.m.Tokenizer.IsSpecial(t) {
			pending = append(pending, t)
		}
	}
	flush()
	return Step{Span: r.index, Step: r.step, Steps: r.steps, Tokens: tokens, Masked: masked, Text: b.String()}
}

// candidate strips the trailing EOS/pad run and any special token left
// inside, and decodes the rest.
func (r *run) candidate() Candidate {
	tok := r.m.Tokenizer
	span := append([]int32(nil), r.span()...)
	end := len(span)
	for end > 0 && r.isEnd(span[end-1]) {
		end--
	}
	var keep []int32
	for _, t := range span[:end] {
		if !tok.IsSpecial(t) {
			keep = append(keep, t)
		}
	}
	var sum float64
	for _, p := range r.prob {
		sum += p
	}
	return Candidate{
		Text:       tok.Decode(keep),
		Tokens:     span,
		Length:     r.n,
		Confidence: sum / float64(r.n),
		Steps:      r.step,
		Probs:      slices.Clone(r.prob),
		FixedAt:    slices.Clone(r.fixedAt),
		Content:    end,
	}
}
