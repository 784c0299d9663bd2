package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// openList opens a proxy list named on the command line ("-" is stdin, named "stdin"); closeFn
// closes it. Following the README's exit codes: a list that does not exist or is a directory is
// bad input (exit 2); one we may not read is a permission problem, a runtime error (exit 3). The
// error names the file and the cause.
func openList(env *Env, file string) (r io.Reader, name string, closeFn func(), err error) {
	if file == "-" {
		if env.Stdin == nil {
			return nil, "", nil, usageError("-: no stdin")
		}
		return env.Stdin, "stdin", func() {}, nil
	}
	f, err := os.Open(file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, "", nil, usageError("proxy list %s does not exist", file)
	case errors.Is(err, fs.ErrPermission):
		return nil, "", nil, fmt.Errorf("proxy list: %w", err)
	case err != nil:
		return nil, "", nil, fmt.Errorf("proxy list: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, "", nil, fmt.Errorf("proxy list: %w", err)
	}
	if fi.IsDir() {
		f.Close()
		return nil, "", nil, usageError("proxy list %s is a directory, not a file", file)
	}
	return f, file, func() { f.Close() }, nil
}
