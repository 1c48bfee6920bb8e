# dfill's everyday tasks. `make run` completes a sample file with the
# embedded model; `make test` runs what CI runs.

GO      ?= go
BIN     := bin/dfill
SAMPLE  ?= cmd/dfill/testdata/sample.go:8:1
GOFILES  = $$(git ls-files '*.go' | grep -v /testdata/)

.PHONY: build test run bench fuzz model vet clean

build:
	$(GO) build -o $(BIN) ./cmd/dfill

# vet, formatting and every test (race detector off: 2-core CI budget).
test: vet
	$(GO) test -count=1 ./...

vet:
	@test -z "$$(gofmt -l $(GOFILES))" || { gofmt -l $(GOFILES); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...

# One completion on a sample Go file, with the embedded model.
run: build
	$(BIN) complete --json $(SAMPLE)

# Measurements (not tests).
bench: build
	$(BIN) bench ar-vs-diffusion
	$(BIN) bench kernels --models tiny

fuzz:
	$(GO) test ./engine/gguf -run XXX -fuzz FuzzParse -fuzztime 60s
	$(GO) test ./engine/tokenizer -run XXX -fuzz FuzzEncodeDecode -fuzztime 60s
	$(GO) test ./engine -run XXX -fuzz FuzzLoadBytes -fuzztime 60s
	$(GO) test ./completion/syntax -run XXX -fuzz FuzzCheck -fuzztime 60s

# The embedded model, reproduced: the exact command, seed and corpus of
# cmd/dfill/model/MODEL.md (this Go's GOROOT/src, testdata and the
# held-out packages excluded). About an hour on 2 cores.
MODEL_FLAGS := --layers 4 --dim 256 --heads 4 --kv-heads 4 --seq 256 --batch 8 --vocab 4096 \
	--steps 3000 --warmup 150 --lr 2e-3 --seed 1 --threads 2 \
	--checkpoint-every 250 --eval-every 250 --log-every 50 --name dfill-go-4m --type q8_0
model: build
	$(BIN) train $(MODEL_FLAGS) --out-dir bin/train --out cmd/dfill/model/dfill-go.gguf

clean:
	rm -rf bin
