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

// consoleSetup prepares a block that calls the console's API (docs/api.md): a worker checks the
// pool the prelude enqueued and stops once the queue has drained; ui.auth holds credentials; the
// example proxy of the docs becomes a live transparent HTTP proxy of the lab. The function
// console starts proxyline ui on its default address, 127.0.0.1:8081, before each API command:
// open (no credentials) or with --auth-file ui.auth when the command sends ui.auth's credentials,
// restarting it when that changes, since a server with credentials refuses requests without.
const consoleSetup = `( exec proxyline worker ) >drain.log 2>&1 &
w=$!
if ready $w drain.log "worker started" "setup: proxyline worker"; then
  proxyline status --wait 60s >drain-status.log 2>&1 || fail "setup: proxyline status --wait 60s" "$(out drain-status.log)"
  stop $w drain.log "setup: proxyline worker"
fi
(umask 077 && echo "admin:$(head -c 18 /dev/urandom | base64)" >ui.auth)
PROXY_ADDR=$(jq -r 'select(.kind == "transparent") | .proxy' fixture-lab/truth.jsonl | sed -n 's,^http://,,p' | head -n 1)
[ -n "$PROXY_ADDR" ] || fail setup "no live transparent HTTP proxy in fixture-lab/truth.jsonl"
console_pid= console_mode= console_n=0
# console MODE WHERE: proxyline ui serving, open or with ui.auth (MODE auth), for the command at WHERE.
console() {
  [ "$console_mode" = "$1" ] && return 0
  [ -z "$console_pid" ] || stop $console_pid console.$console_n.log "setup: proxyline ui ($console_mode)"
  console_n=$((console_n + 1)) console_mode=$1
  local auth=()
  [ "$1" = open ] || auth=(--auth-file ui.auth)
  ( exec proxyline ui "${auth[@]}" ) >console.$console_n.log 2>&1 &
  console_pid=$!
  ready $console_pid console.$console_n.log "serving " "$2: setup: proxyline ui ($1)"
}
`

// epilogue stops what the block left running in the background, then the console if the block
// had one, then the lab.
const epilogue = `for ((i = ${#bg[@]} - 1; i >= 0; i--)); do stop ${bg[i]}; done
[ -z "${console_pid:-}" ] || stop $console_pid console.$console_n.log "setup: proxyline ui ($console_mode)"
stop $lab fixture-lab.log "setup: proxyline lab"
exit $failed
`

// blockScript returns the shell script that runs block b, and how many of its commands run.
func blockScript(b block) (string, int) {
	var s strings.Builder
	s.WriteString(prelude)
	if slices.ContainsFunc(b.cmds, func(c command) bool { return runnable(c) && callsAPI(c) }) {
		s.WriteString(consoleSetup)
	}
	n := 0
	for i, c := range b.cmds {
		key := c.key()
		if why, ok := notRunnable[key]; ok {
			fmt.Fprintf(&s, "# %s: not run: %s\n", c.where, why)
			continue
		}
		n++
		log := outLog(i)
		if callsAPI(c) {
			mode := "open"
			if strings.Contains(c.text, "cat ui.auth") {
				mode = "auth"
			}
			fmt.Fprintf(&s, "console %s %s\n", mode, shq(c.where))
		}
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

// runnable reports whether TestDocCommands runs c.
func runnable(c command) bool {
	_, ok := notRunnable[c.key()]
	return !ok
}

// outLog is the file that holds the output of the block's i-th command.
func outLog(i int) string { return fmt.Sprintf("out.%d", i) }

// callsAPI reports whether c asks the console's JSON API on its default address.
func callsAPI(c command) bool { return strings.Contains(c.text, "http://127.0.0.1:8081/api/") }

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
