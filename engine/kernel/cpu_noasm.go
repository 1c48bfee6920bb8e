//go:build !amd64 || purego

package kernel

// kernelVariants returns the kernel sets this build can run: the pure-Go
// ones only.
func kernelVariants() []string { return []string{"generic"} }

// useVariant does nothing: there is only the pure-Go kernel set.
func useVariant(string) (restore func()) { return func() {} }

// fmaPeak measures nothing without assembly.
func fmaPeak(int) float64 { return 0 }
