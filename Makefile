# dfill's everyday tasks. `make run` completes a sample file; `make test`
# runs what CI runs.

GO      ?= go
BIN     := bin/dfill
MODEL   ?= bin/random-tiny.gguf
SAMPLE  ?= cmd/dfill/testdata/sample.go:8:3

.PHONY: build test run bench fuzz model-random vet clean

build:
	$(GO) build -o $(BIN) ./cmd/dfill

# vet, formatting and every test (race detector off: 2-core CI budget).
test: vet
	$(GO) test -count=1 ./...

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' | grep -v /testdata/))" || { gofmt -l $$(git ls-files '*.go' | grep -v /testdata/); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...

# One completion on a sample Go file. Until the embedded model lands (issue
# 5) this uses a random-weight model, so the text is noise: it shows the
# path, the timings and the JSON shape.
run: build $(MODEL)
	$(BIN) complete --model $(MODEL) --json $(SAMPLE)

$(MODEL): | build
	$(BIN) model random --arch llada --preset tiny --seed 1 --out $(MODEL)

model-random: $(MODEL)

# Measurements (not tests): the engine's step times and AR vs diffusion.
bench: build $(MODEL)
	$(BIN) bench ar-vs-diffusion --model $(MODEL)
	$(GO) test -run XXX -bench . ./engine/kernel

fuzz:
	$(GO) test ./engine/gguf -run XXX -fuzz FuzzParse -fuzztime 60s
	$(GO) test ./engine/tokenizer -run XXX -fuzz FuzzEncodeDecode -fuzztime 60s

clean:
	rm -rf bin
