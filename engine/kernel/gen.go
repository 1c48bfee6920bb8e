package kernel

//go:generate sh -c "cd _asm && GOWORK=off go run . -out ../kernel_amd64.s -stubs ../stub_amd64.go -pkg kernel"
