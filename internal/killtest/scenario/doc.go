// Package scenario defines killtest's scenario files: the YAML format, its strict decoding (every
// error names file:line:field, unknown fields are errors), semantic validation, and the per-run
// expansion of ${VAR} references. docs/killtest.md is the full reference.
package scenario
