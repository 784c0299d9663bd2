package docrun_test

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// prelude starts every block's script: helpers, the loopback interface of the block's network
// namespace, and the lab standing in for the internet, with the files the docs' commands name.
const prelude = `set -u
exec </dev/null
T=$PWD
failed=0
bg=()
fail() { printf '\nDOCFAIL %s: %s\n' "$1" "$2"; failed=1; }
out() { tail -n 15 "$1" | sed 's/^/    | /'; }
# ready PID LOG PATTERN WHERE: polls LOG for PATTERN, with a deadline, while PID lives.
ready() {
  local i
  for i in $(seq 1 1200); do
    grep -q -- "$3" "$2" 2>/dev/null && return 0
    if ! kill -0 "$1" 2>/dev/null; then wait "$1"; fail "$4" "exited ($?) before it was ready:
$(out "$2")"; return 1; fi
    sleep 0.05 # polling with a deadline (60 s)
  done
  fail "$4" "not ready within 60 s:
$(out "$2")"
  return 1
}
# stop PID LOG WHERE: SIGTERM, then it must exit 0.
stop() {
  if ! kill -0 "$1" 2>/dev/null; then wait "$1"; fail "$3" "exited ($?) before it was stopped:
$(out "$2")"; return; fi
  kill -TERM "$1"
  wait "$1"
  local rc=$?
  [ "$rc" = 0 ] || fail "$3" "exit $rc after SIGTERM:
$(out "$2")"
}
ip link set lo up || { fail setup "ip link set lo up"; exit 1; }
mkdir -p tmp bin && ln -s "$DOCRUN_BIN"/* bin/ && cp "$DOCRUN_FIXTURES"/* .
( exec proxyline lab --dir fixture-lab --sources 3 --backend ) >fixture-lab.log 2>&1 &
lab=$!
ready $lab fixture-lab.log "lab ready" "setup: proxyline lab" || exit 1
cp fixture-lab/candidates.txt proxies.txt && cp proxies.txt list && cp proxies.txt live.txt &&
  cp fixture-lab/sources.toml sources.toml && cp fixture-lab/ca.pem ca.pem || fail setup "lab files"
JUDGE=$(sed -n 1p fixture-lab/judge.txt)
JUDGE_TLS=$(sed -n 2p fixture-lab/judge.txt)
proxyline enqueue --judge "$JUDGE" -t 2s proxies.txt >enqueue.log 2>&1 || fail "setup: proxyline enqueue" "$(out enqueue.log)"
`

// epilogue stops what the block left running in the background, then the lab.
const epilogue = `for ((i = ${#bg[@]} - 1; i >= 0; i--)); do stop ${bg[i]}; done
stop $lab fixture-lab.log "setup: proxyline lab"
exit $failed
`

// blockScript returns the shell script that runs block b, and how many of its commands run.
func blockScript(b block) (string, int) {
	var s strings.Builder
	s.WriteString(prelude)
	n := 0
	for i, c := range b.cmds {
		key := c.file + ": " + c.text
		if why, ok := notRunnable[key]; ok {
			fmt.Fprintf(&s, "# %s: not run: %s\n", c.where, why)
			continue
		}
		n++
		log := fmt.Sprintf("out.%d", i)
		if ready, ok := readyLine(c); ok {
			fmt.Fprintf(&s, "( exec %s ) >%s 2>&1 &\npid=$!\n", substitute(c.src), log)
			fmt.Fprintf(&s, "if ready $pid %s %s %s; then ", log, shq(ready), shq(c.where))
			if c.background {
				fmt.Fprintf(&s, "bg+=(\"$pid %s %s\"); fi\n", log, shq(c.where))
			} else {
				fmt.Fprintf(&s, "stop $pid %s %s; fi\n", log, shq(c.where))
			}
			continue
		}
		if c.background {
			fmt.Fprintf(&s, "( %s ) >%s 2>&1 &\nbg+=(\"$! %s %s\")\n", substitute(c.src), log, log, shq(c.where))
			continue
		}
		fmt.Fprintf(&s, "{ %s\n} >%s 2>&1\nrc=$?\n", substitute(c.src), log)
		fmt.Fprintf(&s, "case $rc in %s) ;; *) fail %s \"exit $rc:\n$(out %s)\" ;; esac\n",
			exits(key), shq(c.where), log)
	}
	s.WriteString(epilogue)
	return s.String(), n
}

// readyLine returns the ready log line of a long-running proxyline command.
func readyLine(c command) (string, bool) {
	call := c.call
	if len(call) > 2 && call[0] == "go" && call[1] == "run" && call[2] == "./cmd/proxyline" {
		call = append([]string{"proxyline"}, call[3:]...) // substituted by the built proxyline
	}
	if len(call) < 2 || (call[0] != "proxyline" && call[0] != "bin/proxyline") {
		return "", false
	}
	if slices.Contains(call[2:], "--print-config") {
		return "", false // prints and exits, whatever the subcommand
	}
	line, ok := longRunning[call[1]]
	return line, ok
}

// exits is the case pattern of the exit codes allowed for the command key.
func exits(key string) string {
	codes := slices.Clone(allowedExit[key])
	if len(codes) == 0 {
		codes = []int{0}
	}
	parts := make([]string, len(codes))
	for i, c := range codes {
		parts[i] = strconv.Itoa(c)
	}
	return strings.Join(parts, "|")
}

// shq quotes s for the shell, in single quotes.
func shq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
