// Package archtest keeps the module's import graph the shape docs/packages.md draws: every
// package has a layer, imports go down the layers (never up, so no cycle can cross them),
// killtest and the pipeline share only the base layer, production code never imports test
// support, and every package has a doc comment. The rules are data (Layers); the graph comes from
// `go list`; the test in this package runs the rules over the module, and over a known-bad
// fixture module in testdata that they must catch.
package archtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
)

// Layer is a rank in the import graph: a package may import packages of its own layer or of a
// lower one.
type Layer int

// The layers, from the bottom. Test is outside the order: test support may import anything
// below cli, and only tests may import it.
const (
	Base      Layer = iota + 1 // shared by everything: /proc, secrets, listening rule, lifecycle, proxy values
	Mechanism                  // one mechanism each: checking, the pool, supervision; killtest's observer and detectors
	Service                    // long-lived services built from mechanisms: queue, rotator, scraper, lab; killtest's runner
	App                        // what `proxyline run` serves (the run service, console, API, web UI, metrics); the runs of check and demo
	CLI                        // flags to options to one call
	Cmd                        // thin mains and benchmark programs
	Test                       // test support
)

var layerNames = map[Layer]string{Base: "base", Mechanism: "mechanism", Service: "service", App: "app", CLI: "cli", Cmd: "cmd", Test: "test support"}

func (l Layer) String() string {
	if n, ok := layerNames[l]; ok {
		return n
	}
	return fmt.Sprintf("layer %d", int(l))
}

// Layers places every package of the module, by path relative to the module. A package under
// cmd/ or scripts/ is in Cmd. A new package must be added here (and to docs/packages.md).
var Layers = map[string]Layer{
	"proxy":                            Base,
	"deploy/systemd":                   Cmd, // unit files; its test checks them
	"scenarios":                        Base,
	"internal/proctab":                 Base,
	"internal/secret":                  Base,
	"internal/serve":                   Base,
	"internal/signals":                 Base,
	"internal/cmdline":                 Base,
	"internal/tomlfile":                Base,
	"internal/lifecycle":               Base,
	"internal/judge":                   Mechanism,
	"internal/proxydial":               Mechanism,
	"internal/check":                   Mechanism,
	"internal/check/external":          Mechanism,
	"internal/pool":                    Mechanism,
	"internal/supervise":               Mechanism,
	"internal/scrape/extract":          Mechanism,
	"internal/scrape/fetch":            Mechanism,
	"internal/scrape/geo":              Mechanism,
	"internal/queue":                   Service,
	"internal/backend":                 Service,
	"internal/rotate":                  Service,
	"internal/scrape":                  Service,
	"internal/lab":                     Service,
	"internal/api":                     App,
	"internal/web":                     App,
	"internal/metrics":                 App,
	"internal/console":                 App,
	"internal/run":                     App,
	"internal/checkrun":                App,
	"internal/demo":                    App,
	"internal/cli":                     CLI,
	"internal/killtest/human":          Mechanism,
	"internal/killtest/history":        Mechanism,
	"internal/killtest/scenario":       Mechanism,
	"internal/killtest/observe":        Mechanism,
	"internal/killtest/detect":         Mechanism,
	"internal/killtest/probe":          Mechanism,
	"internal/killtest/report":         Mechanism,
	"internal/killtest/run":            Service,
	"internal/killtest/watch":          Service,
	"internal/killtest/cli":            CLI,
	"internal/testdb":                  Test,
	"internal/testkit":                 Test,
	"internal/docrun":                  Test,
	"internal/lifecycle/lifecycletest": Test,
	"internal/scrape/geo/geotest":      Test,
	"internal/archtest":                Test,
}

// Package is what the rules need of one package: its path and imports relative to the module
// (imports from outside the module dropped), its name and its doc comment.
type Package struct {
	Path    string
	Name    string
	Doc     string
	Imports []string
}

// listed is one package as `go list -json` prints it.
type listed struct {
	ImportPath string
	Name       string
	Doc        string
	Imports    []string
	Module     *struct{ Path string }
	Error      *struct{ Err string }
}

// Load lists the packages of the module in dir with `go list` (the go command on PATH).
func Load(ctx context.Context, dir string) ([]Package, error) {
	cmd := exec.CommandContext(ctx, "go", "list", "-e", "-json=ImportPath,Name,Doc,Imports,Module,Error", "./...")
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list in %s: %w: %s", dir, err, strings.TrimSpace(stderr.String()))
	}
	var pkgs []Package
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var l listed
		if err := dec.Decode(&l); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("go list in %s: decode: %w", dir, err)
		}
		if l.Error != nil {
			return nil, fmt.Errorf("go list in %s: package %s: %s", dir, l.ImportPath, l.Error.Err)
		}
		if l.Module == nil {
			return nil, fmt.Errorf("go list in %s: package %s is in no module", dir, l.ImportPath)
		}
		pkgs = append(pkgs, relative(l, l.Module.Path))
	}
	return pkgs, nil
}

// relative makes a listed package's path and in-module imports relative to the module.
func relative(l listed, module string) Package {
	p := Package{Path: strings.TrimPrefix(strings.TrimPrefix(l.ImportPath, module), "/"), Name: l.Name, Doc: l.Doc}
	for _, imp := range l.Imports {
		if imp == module || strings.HasPrefix(imp, module+"/") {
			p.Imports = append(p.Imports, strings.TrimPrefix(strings.TrimPrefix(imp, module), "/"))
		}
	}
	return p
}

// LayerOf returns the layer of a module-relative package path, and whether it has one.
func LayerOf(layers map[string]Layer, path string) (Layer, bool) {
	if l, ok := layers[path]; ok {
		return l, true
	}
	if strings.HasPrefix(path, "cmd/") || strings.HasPrefix(path, "scripts/") {
		return Cmd, true
	}
	return 0, false
}

// isKilltest reports whether a package belongs to killtest (the stress harness), which tests
// the pipeline from the outside.
func isKilltest(path string) bool {
	return path == "cmd/killtest" || path == "internal/killtest" || strings.HasPrefix(path, "internal/killtest/")
}

// Check returns every broken rule, each naming the package (and the import) at fault.
func Check(pkgs []Package, layers map[string]Layer) []error {
	var errs []error
	for _, p := range pkgs {
		if strings.TrimSpace(p.Doc) == "" {
			errs = append(errs, fmt.Errorf("%s: no package doc comment", p.Path))
		}
		from, ok := LayerOf(layers, p.Path)
		if !ok {
			errs = append(errs, fmt.Errorf("%s: no layer: add it to archtest.Layers and docs/packages.md", p.Path))
			continue
		}
		for _, imp := range p.Imports {
			if err := checkImport(p.Path, from, imp, layers); err != nil {
				errs = append(errs, err)
			}
		}
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errs
}

// checkImport checks one arrow, from (in layer fromL) to imp.
func checkImport(from string, fromL Layer, imp string, layers map[string]Layer) error {
	to, ok := LayerOf(layers, imp)
	if !ok {
		return nil // reported as a package without a layer
	}
	switch {
	case isKilltest(from) && !isKilltest(imp) && to != Base:
		return fmt.Errorf("%s imports %s: killtest imports nothing of the pipeline (only the base layer)", from, imp)
	case !isKilltest(from) && isKilltest(imp):
		return fmt.Errorf("%s imports %s: the pipeline never imports killtest", from, imp)
	case to == Test && fromL != Test:
		return fmt.Errorf("%s imports %s: only tests import test support", from, imp)
	case fromL == Test && to >= CLI:
		return fmt.Errorf("%s (%s) imports %s (%s): test support stays below the command layers", from, fromL, imp, to)
	case fromL == Test:
		return nil
	case to > fromL:
		return fmt.Errorf("%s (%s) imports %s (%s): imports go down the layers, never up", from, fromL, imp, to)
	}
	return nil
}
