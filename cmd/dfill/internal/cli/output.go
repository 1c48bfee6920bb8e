package cli

import (
	"encoding/json"
	"os"
	"time"
)

// PrintJSON writes v to stdout as indented JSON: what --json prints.
func PrintJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// Millis returns d in milliseconds to the microsecond, as the commands'
// JSON and tables report durations.
func Millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
