package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/proxyline/proxyline/internal/killtest/scenario"
	"github.com/proxyline/proxyline/scenarios"
)

// builtinPrefix names embedded scenarios in reports ("builtin:test1-sigterm.yaml").
const builtinPrefix = "builtin:"

// builtins parses the embedded scenarios (top level only; examples are not part of the suite).
func builtins() ([]*scenario.Scenario, error) {
	names, err := fs.Glob(scenarios.FS, "*.yaml")
	if err != nil {
		return nil, fmt.Errorf("list built-in scenarios: %w", err)
	}
	sort.Strings(names)
	var out []*scenario.Scenario
	var errs []error
	for _, n := range names {
		data, err := scenarios.FS.ReadFile(n)
		if err != nil {
			errs = append(errs, fmt.Errorf("read built-in %s: %w", n, err))
			continue
		}
		sc, err := scenario.Parse(builtinPrefix+n, data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, sc)
	}
	return out, errors.Join(errs...)
}

// resolve turns run arguments into scenarios: files, directories (their *.yaml, sorted), or
// names of built-in scenarios. No argument means the built-in suite.
func resolve(args []string) ([]*scenario.Scenario, error) {
	if len(args) == 0 {
		return builtins()
	}
	var out []*scenario.Scenario
	var errs []error
	for _, a := range args {
		fi, err := os.Stat(a)
		switch {
		case err == nil && fi.IsDir():
			files, err := filepath.Glob(filepath.Join(a, "*.yaml"))
			if err != nil {
				errs = append(errs, fmt.Errorf("list %s: %w", a, err))
				continue
			}
			if len(files) == 0 {
				errs = append(errs, fmt.Errorf("%s: no *.yaml scenario in the directory", a))
			}
			sort.Strings(files)
			for _, f := range files {
				sc, err := scenario.LoadFile(f)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				out = append(out, sc)
			}
		case err == nil:
			sc, err := scenario.LoadFile(a)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			out = append(out, sc)
		default:
			sc, berr := builtinByName(a)
			if berr != nil {
				errs = append(errs, fmt.Errorf("%s: not a file, directory or built-in scenario: %w", a, err))
				continue
			}
			out = append(out, sc)
		}
	}
	return out, errors.Join(errs...)
}

func builtinByName(name string) (*scenario.Scenario, error) {
	all, err := builtins()
	if err != nil {
		return nil, err
	}
	name = strings.TrimPrefix(name, builtinPrefix)
	for _, sc := range all {
		if sc.Name == name || strings.TrimPrefix(sc.File, builtinPrefix) == name {
			return sc, nil
		}
	}
	return nil, fmt.Errorf("no built-in scenario %q", name)
}
