// Package docrun holds the test that runs the shell commands of README.md and docs/*.md, so that
// an example that stops working fails CI. It has no code of its own: see docrun_test.go for what
// runs, how the lab stands in for the internet, and which commands cannot run and why.
package docrun
