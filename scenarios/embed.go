// Package scenarios holds killtest's built-in scenarios: the YAML files in this directory,
// embedded in the killtest binary (run with no arguments, listed by `killtest list`). They are
// also meant to be copied and adapted. examples/ holds documented examples that are not run by
// default (they need systems that are not installed here, such as Celery).
package scenarios

import "embed"

// FS holds the built-in scenario files (*.yaml at the top level) and the examples.
//
//go:embed *.yaml examples/*.yaml
var FS embed.FS
