package docrun_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// blockTimeout bounds one block's run: a failure bound on a busy machine, not an expectation.
const blockTimeout = 4 * time.Minute

// allowedExit lists commands whose documented outcome is not exit 0, with the codes they may end
// with where they run here.
var allowedExit = map[string][]int{
	// The README's worker runs for a moment (long-running commands get a short life here), so the
	// pool may have no live proxy yet: exit 1 is export's documented "no live proxy".
	"README.md: proxyline export --format jsonl": {0, 1},
}

// longRunning maps a subcommand that runs until it is stopped to the log line that says it is
// ready. Such a command is started, awaited until it logs that line, and stopped with SIGTERM
// (it must then exit 0): at once when the doc runs it in the foreground, at the end of its block
// when the doc runs it in the background (&).
var longRunning = map[string]string{
	"run":    "run ready",
	"lab":    "lab ready",
	"judge":  "judge ready",
	"serve":  "rotator ready",
	"ui":     "serving ",
	"worker": "worker started",
}

// TestDocCommands runs the shell commands of README.md and docs/*.md, block by block, each block
// as one shell script in a temporary directory with proxyline and killtest on PATH, inside its own
// network, PID and mount namespaces: the default ports (8081, 8089) and the lab's addresses are
// the block's own, and nothing it starts outlives it. A lab (`proxyline lab`) stands in for the
// internet: its candidates are proxies.txt (and list, live.txt), its sources sources.toml, its
// judges replace the docs' placeholder judges, its CA is ca.pem; proxyline.db holds its proxies,
// enqueued. Other substitutions: `go run ./cmd/X` runs the built X; `go build -o bin/ ./cmd/...`
// links the built programs into bin/ (they are built once, by testkit); /tmp/ is the block's
// own tmp/. A block that calls the console's API gets a checked pool and proxyline ui
// (consoleSetup). A command that fails, or whose output is not what outputs says, fails the test
// with its file:line and the end of its output. Commands in notRunnable do not run.
func TestDocCommands(t *testing.T) {
	if os.Geteuid() != 0 {
		skipOrFail(t, "needs root for network and PID namespaces (unshare)")
	}
	for _, tool := range []string{"unshare", "ip", "bash", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			skipOrFail(t, tool+" is missing")
		}
	}
	root := moduleRoot(t)
	blocks := allBlocks(t, root)
	bin := testkit.BuildDir(t, "docrun",
		testkit.Program{Pkg: "./cmd/proxyline", Opts: []testkit.BuildOption{testkit.NoRace()}},
		testkit.Program{Pkg: "./cmd/killtest", Opts: []testkit.BuildOption{testkit.NoRace()}})
	fixtures, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range blocks {
		script, n := blockScript(b)
		if n == 0 {
			continue
		}
		t.Run(fmt.Sprintf("%s:%d", b.file, b.line), func(t *testing.T) {
			t.Parallel()
			runBlock(t, b, script, bin, fixtures)
		})
	}
}

// skipOrFail skips the test, or fails it under CI, where every test must run.
func skipOrFail(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal(why + " (under CI this test must run)")
	}
	t.Skip(why)
}

// moduleRoot is the directory of go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// allBlocks extracts the blocks of every document and checks that each notRunnable entry
// matches a command.
func allBlocks(t *testing.T, root string) []block {
	t.Helper()
	files, err := docs(root)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []block
	used := map[string]bool{}
	for _, f := range files {
		bs, err := extract(root, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bs {
			for _, c := range b.cmds {
				used[c.key()] = true
			}
		}
		blocks = append(blocks, bs...)
	}
	for k := range notRunnable {
		if !used[k] {
			t.Errorf("notRunnable names a command that no doc has (edited or removed?): %q", k)
		}
	}
	for k := range outputs {
		if !used[k] {
			t.Errorf("outputs names a command that no doc has (edited or removed?): %q", k)
		}
	}
	for k := range allowedExit {
		if !used[k] {
			t.Errorf("allowedExit names a command that no doc has (edited or removed?): %q", k)
		}
	}
	return blocks
}

// runBlock runs the script of block b in new network, PID and mount namespaces, then checks the
// outputs of its commands (outputs).
func runBlock(t *testing.T, b block, script, bin, fixtures string) {
	dir := t.TempDir()
	path := filepath.Join(dir, "block.sh")
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), blockTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "--net", "--pid", "--mount", "--fork", "--kill-child",
		"--mount-proc", "bash", path)
	cmd.Dir = dir
	// unshare --kill-child ends the block's namespace with unshare; this ends unshare with the test
	// (a killed test binary would otherwise leave the block's servers running).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "DOCRUN_BIN="+bin,
		"DOCRUN_FIXTURES="+fixtures, "TMPDIR="+dir, "PROXYLINE_DATABASE="+filepath.Join(dir, "proxyline.db"))
	cmd.WaitDelay = 10 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	failed := false
	for _, line := range strings.Split(out.String(), "\nDOCFAIL ")[1:] {
		t.Error(strings.TrimRight(line, "\n"))
		failed = true
	}
	if err != nil && !failed {
		t.Errorf("block script: %v (timeout %s)\n%s\nscript:\n%s", err, blockTimeout, tail(out.String(), 40), script)
	}
	for _, bad := range checkOutputs(b, dir) {
		t.Error(bad)
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// substitution makes a doc command run here: a match of re becomes lit (a regexp template, for
// the match's groups), then a reference to the script variable env if one is named, then after.
// The reference is written for where the match stands: "$V" outside quotes, ${V} inside double
// quotes, '"$V"' inside single quotes (so a URL in single quotes can name the lab's judge).
type substitution struct {
	re       *regexp.Regexp
	lit, env string
	after    string
}

// substitutions stand the lab in for the internet, the built programs for go run and go build,
// the block's tmp/ for /tmp/, and a proxy of the lab's pool for the docs' example proxy.
var substitutions = []substitution{
	{re: regexp.MustCompile(`\bgo run \./cmd/(proxyline|killtest)\b`), lit: "$1"},
	{re: regexp.MustCompile(`\bgo build -o bin/ (\./cmd/[a-z.]+ ?)+`), lit: "true "},
	{re: regexp.MustCompile(`https://judge\.example(:8443)?/`), env: "JUDGE_TLS"},
	{re: regexp.MustCompile(`http://(your-judge|judge\.example|judge|127\.0\.0\.2):8080/`), env: "JUDGE"},
	{re: regexp.MustCompile(`(^|[\s"'=])/tmp/`), lit: "${1}", env: "T", after: "/tmp/"},
	{re: regexp.MustCompile(`\b127\.0\.0\.9:34603\b`), env: "PROXY_ADDR"},
}

// substitute applies substitutions to a command's text.
func substitute(s string) string {
	for _, sub := range substitutions {
		s = sub.apply(s)
	}
	return s
}

// apply replaces every match of sub in s.
func (sub substitution) apply(s string) string {
	var out strings.Builder
	last := 0
	for _, m := range sub.re.FindAllStringSubmatchIndex(s, -1) {
		out.WriteString(s[last:m[0]])
		lit := string(sub.re.ExpandString(nil, sub.lit, s, m))
		out.WriteString(lit)
		if sub.env != "" {
			out.WriteString(reference(sub.env, quoteAt(s, m[0]+len(lit))))
		}
		out.WriteString(sub.after)
		last = m[1]
	}
	out.WriteString(s[last:])
	return out.String()
}

// reference is a reference to the shell variable name, written for the quoting q it stands in.
func reference(name string, q byte) string {
	switch q {
	case '\'':
		return `'"$` + name + `"'`
	case '"':
		return "${" + name + "}"
	default:
		return `"$` + name + `"`
	}
}

// quoteAt returns the quoting in force at offset i of the shell text s: 0 (none), a single quote
// or a double quote. It follows quotes and backslashes, not the nesting of $(...) inside double
// quotes, which the substituted texts do not need.
func quoteAt(s string, i int) byte {
	var q byte
	for j := 0; j < i; j++ {
		switch c := s[j]; {
		case q == '\'' && c == '\'':
			q = 0
		case q == '\'':
		case c == '\\':
			j++
		case q == '"' && c == '"':
			q = 0
		case q == 0 && (c == '\'' || c == '"'):
			q = c
		}
	}
	return q
}
