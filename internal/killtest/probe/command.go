package probe

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/proxyline/proxyline/internal/killtest/history"
)

// CommandSpec is a command probe.
type CommandSpec struct {
	Argv    []string
	Sh      string // used when Argv is empty: sh -c Sh
	JSON    string // dot path of the number in stdout's JSON; "" reads the whole stdout
	Timeout time.Duration
	Env     []string
	Dir     string
}

// Command runs the probe command in its own process group (killed as a group on timeout) and
// parses a number from its stdout.
func Command(ctx context.Context, c CommandSpec) (float64, error) {
	argv := c.Argv
	if len(argv) == 0 {
		argv = []string{"sh", "-c", c.Sh}
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = c.Env
	cmd.Dir = c.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		if cmd.Process.Pid > 1 {
			return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
		return nil
	}
	cmd.WaitDelay = time.Second
	var out, errb bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &errb
	err := cmd.Run()
	// Whatever the outcome, the group must be gone: a probe never leaves a process behind.
	if cmd.Process != nil && cmd.Process.Pid > 1 {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	if err != nil {
		if ctx.Err() != nil {
			return 0, fmt.Errorf("probe command %q: stopped before it finished (timeout %v): %w", strings.Join(argv, " "), c.Timeout, ctx.Err())
		}
		return 0, fmt.Errorf("probe command %q: %w (stderr: %s)", strings.Join(argv, " "), err, tail(errb.String()))
	}
	return ParseNumber(out.Bytes(), c.JSON)
}

// ParseNumber reads a number from a command's output: the whole trimmed text, or the field at
// path of its JSON. Booleans count as 0/1, JSON arrays and objects as their length.
func ParseNumber(out []byte, path string) (float64, error) {
	if path == "" {
		s := strings.TrimSpace(string(out))
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0, fmt.Errorf("probe output %q is not a number", clip(s))
		}
		return v, nil
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return 0, fmt.Errorf("probe output is not JSON: %w", err)
	}
	v, ok := history.FieldPath(doc, path)
	if !ok {
		return 0, fmt.Errorf("probe output has no field %q", path)
	}
	switch t := v.(type) {
	case json.Number:
		return t.Float64()
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(t), 64)
		if err != nil {
			return 0, fmt.Errorf("probe field %q = %q is not a number", path, clip(t))
		}
		return f, nil
	case bool:
		if t {
			return 1, nil
		}
		return 0, nil
	case []any:
		return float64(len(t)), nil
	case map[string]any:
		return float64(len(t)), nil
	}
	return 0, errors.New("probe field " + strconv.Quote(path) + " is null")
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

func tail(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 300 {
		return "…" + s[len(s)-300:]
	}
	return s
}
