# dfill's everyday tasks. `make run` completes a sample file with the
# embedded model; `make test` runs what CI runs.

GO      ?= go
BIN     := bin/dfill
SAMPLE  ?= cmd/dfill/testdata/sample.go:8:1
GOFILES  = $$(git ls-files '*.go' | grep -v /testdata/)

.PHONY: build test deps test-editors test-playground test-cudaemu run bench fuzz model vet clean cuda-deps cuda

build:
	$(GO) build -o $(BIN) ./cmd/dfill

# What CI runs: installs what the tests need beyond Go (editors/deps.sh:
# Node.js, Neovim, Emacs, Chromium, code-server...), then vet, formatting,
# every Go test, a few seconds of every fuzzer beyond its seed corpus, each
# editor client's end-to-end test in the real editor, and the playground's
# in Chromium, and the CUDA kernels in their CPU emulation. Race detector
# off: 2-core CI budget.
test: deps vet build
	$(GO) test -count=1 ./...
	$(MAKE) --no-print-directory fuzz FUZZTIME=3s
	$(MAKE) --no-print-directory test-editors
	$(MAKE) --no-print-directory test-playground
	$(MAKE) --no-print-directory test-cudaemu

# What the tests need beyond Go and gcc, installed when missing (sudo when
# not root).
deps:
	editors/deps.sh

# The editor clients' end-to-end tests against bin/dfill.
test-editors: build
	DFILL=$(CURDIR)/$(BIN) editors/test.sh

# dfill http's /playground in Chromium against bin/dfill.
test-playground: build
	DFILL=$(CURDIR)/$(BIN) api/playground/test.sh

vet:
	@test -z "$$(gofmt -l $(GOFILES))" || { gofmt -l $(GOFILES); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags cudaemu ./cuda

# One completion on a sample Go file, with the embedded model.
run: build
	$(BIN) complete --json $(SAMPLE)

# Measurements (not tests).
bench: build
	$(BIN) bench ar-vs-diffusion
	$(BIN) bench kernels --models tiny

# Every Fuzz target in the repository, FUZZTIME each (a minute by default).
FUZZTIME ?= 60s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
	    out=$$($(GO) test $$pkg -run XXX -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) 2>&1) || \
	      { echo "$$out"; exit 1; }; \
	  done; \
	done

# The embedded model, reproduced: the exact command, seed and corpus of
# cmd/dfill/model/MODEL.md (this Go's GOROOT/src, testdata and the
# held-out packages excluded). About an hour on 2 cores.
MODEL_FLAGS := --layers 4 --dim 256 --heads 4 --kv-heads 4 --seq 256 --batch 8 --vocab 4096 \
	--steps 3000 --warmup 150 --lr 2e-3 --seed 1 --threads 2 \
	--checkpoint-every 250 --eval-every 250 --log-every 50 --name dfill-go-4m --type q8_0
model: build
	$(BIN) train $(MODEL_FLAGS) --out-dir bin/train --out cmd/dfill/model/dfill-go.gguf

# The CUDA kernels and device model run on the CPU: the kernels compiled by
# the host C++ compiler with cuda/emu's emulation of threads, warps and
# mma.sync, checked against the engine (no GPU, no CUDA packages needed;
# the qwen-sized cases are left to cuda/check.sh on a GPU). About 2 minutes.
test-cudaemu:
	$(GO) test -count=1 -tags cudaemu -run 'Test[^LG]|TestLogits/^(tiny|dream_Q|llada)|TestGreedyDenoise/^tiny' ./cuda

# The CUDA backend's build (cuda/README.md), never part of test: Debian's
# CUDA headers, driver library and nvcc, installed when missing (contrib
# and non-free enabled in the Debian sources; about 3 GB).
cuda-deps:
	cuda/deps.sh

# The committed PTX checked against a fresh nvcc build (and assembled for
# sm_80 and sm_90), then vet with the cuda tag, the cuda-tagged binary and
# the GPU checks' test binary, which cuda/check.sh runs on a GPU machine.
cuda: cuda-deps
	cuda/ptx.sh --check
	$(GO) vet -tags cuda ./...
	$(GO) build -tags cuda -o bin/dfill-cuda ./cmd/dfill
	$(GO) test -c -tags cuda -o bin/cuda.test ./cuda

clean:
	rm -rf bin
