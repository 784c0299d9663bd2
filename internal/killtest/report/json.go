package report

import (
	"encoding/json"
	"fmt"
	"io"
)

// JSON writes the whole suite as indented JSON, with the overall verdict and exit code.
func JSON(w io.Writer, s Suite) error {
	out := struct {
		Verdict  string `json:"verdict"`
		ExitCode int    `json:"exit_code"`
		Suite
	}{string(s.Verdict()), s.ExitCode(), s}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("write json report: %w", err)
	}
	return nil
}
