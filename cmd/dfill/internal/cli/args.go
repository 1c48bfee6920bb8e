package cli

import (
	"flag"
	"strings"
)

// permuteArgs moves the flags of fs that follow positional arguments in
// front of them, so that `dfill model info PATH --json` parses as users
// type it; the positional arguments follow a "--", so that one that
// begins with "-" after the user's own "--" stays an argument. A flag takes
// the next argument as its value unless it is a bool flag of fs or is
// written -name=value.
func permuteArgs(fs *flag.FlagSet, args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if strings.HasPrefix(a, "-") && len(a) > 1 {
			flags = append(flags, a)
			if !strings.Contains(a, "=") && i+1 < len(args) && !isBoolFlag(fs, a) {
				flags = append(flags, args[i+1])
				i++
			}
			continue
		}
		pos = append(pos, a)
	}
	if len(pos) == 0 {
		return flags
	}
	return append(append(flags, "--"), pos...)
}

// isBoolFlag reports whether arg (-name or --name) names a bool flag of fs,
// or -h/-help, which the flag package answers with the help.
func isBoolFlag(fs *flag.FlagSet, arg string) bool {
	name := strings.TrimLeft(arg, "-")
	f := fs.Lookup(name)
	if f == nil {
		return name == "h" || name == "help"
	}
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}
