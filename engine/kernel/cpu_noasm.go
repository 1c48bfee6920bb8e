//go:build !amd64 || purego

package kernel

// kernelVariants returns the kernel sets this build can run: the pure-Go
// ones only.
func kernelVariants() []string { return []string{"generic"} }

// useVariant does nothing: there is only the pure-Go kernel set.
func useVariant(string) (restore func()) { return func() {} }

// Variant returns the name of the kernel set in use: "generic" (pure Go)
// in this build.
func Variant() string { return "generic" }

// FMAPeak measures nothing without assembly: it returns 0.
func FMAPeak(int) float64 { return 0 }

// VNNIPeak measures nothing without assembly: it returns 0.
func VNNIPeak(int) float64 { return 0 }

// BF16Peak measures nothing without assembly: it returns 0.
func BF16Peak(int) float64 { return 0 }
