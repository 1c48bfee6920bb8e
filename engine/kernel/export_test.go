package kernel

// Hooks for the external tests in this directory (package kernel_test).
var (
	UseVariant     = useVariant
	KernelVariants = kernelVariants
)
