package checkrun

import (
	"fmt"
	"io"
	"os"
)

// output is where results go: stdout, or the results file.
type output struct {
	io.Writer
	file *os.File // nil for stdout
}

// createOutput creates the results file at path, or writes to stdout when path is "".
func createOutput(stdout io.Writer, path string) (*output, error) {
	if path == "" {
		return &output{Writer: stdout}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create output: %w", err)
	}
	return &output{Writer: f, file: f}, nil
}

// commit closes the output file, reporting what closing it says.
func (o *output) commit() error {
	if o.file == nil {
		return nil
	}
	f := o.file
	o.file = nil
	if err := f.Close(); err != nil {
		return fmt.Errorf("close output %s: %w", f.Name(), err)
	}
	return nil
}

// close closes the output file if commit did not.
func (o *output) close() {
	if o.file != nil {
		o.file.Close()
	}
}
