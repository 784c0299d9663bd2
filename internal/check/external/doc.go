// Package external is the exec checker backend: it checks a chunk of proxies by running an
// external tool with a mubeng-compatible command line, such as
//
//	mubeng -f {in} --check -o {out} -t {timeout}
//
// under internal/supervise, so that neither a timeout, a cancel nor a crash of the worker can
// leave the tool or anything it started running. The template is split into argv with shell
// quoting rules, but no shell is run. stdin is /dev/null, or a pseudo-terminal for tools that
// need one (so `script -q /dev/null -c ...` is never needed). The placeholders are documented in
// docs/check.md, "External checkers (--exec)".
package external
