// Package external is the exec checker backend: it checks a chunk of proxies by running an
// external tool with a mubeng-compatible command line, such as
//
//	mubeng -f {in} --check -o {out} -t {timeout}
//
// under internal/supervise, so that neither a timeout, a cancel nor a crash of the worker can
// leave the tool or anything it started running. The template is split into argv with shell
// quoting rules, but no shell is run (ValidateTemplate checks one up front). stdin is /dev/null,
// or a pseudo-terminal for tools that need one (so `script -q /dev/null -c ...` is never
// needed). Each run has a private directory (supervise.Supervisor.MkdirTask: mode 0700, named by
// its owner so a sweep removes it if the worker is killed) holding {in} and {out}, and the tool
// gets a minimal environment (never proxyline's own variables). What the tool reports is read as
// a stream, no further than a bound tied to the chunk. CheckAll and CheckStream split a list, or
// a stream of proxies, into chunks and run them one after the other, reporting each failed
// chunk. The placeholders are documented in docs/check.md, "External checkers (--exec)".
package external
