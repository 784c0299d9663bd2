package docrun_test

// Why a command of the docs cannot run in TestDocCommands. Each is a reason a reader would accept.
const (
	testGo      = "a go test, benchmark or fuzz command: the test suite itself, which CI runs"
	script      = "a benchmark script: minutes of load, and wrk and mubeng, which CI does not have"
	suite       = "killtest's built-in scenarios: minutes; internal/killtest/cli TestBuiltinSuite runs them"
	internet    = "needs the internet (example.com, example.org, the public sources) or stands for any arguments"
	public      = "scrape.toml is --print-config's, whose sources are public lists on the internet"
	mubeng      = "mubeng's check mode always asks https://ipinfo.io/json; internal/cli TestMubengDocExamples runs every --exec example with the peer build of mubeng (../shared/peers/mubeng) against the lab, inside private network and mount namespaces that answer ipinfo.io on loopback"
	mubengLink  = "/path/to/mubeng stands for wherever mubeng is (../shared/peers/mubeng here); internal/killtest/cli TestCelerySystems links the peer build into its --bin directory the same way"
	apt         = "installs Debian packages"
	celery      = "needs Celery, Redis and mubeng; internal/killtest/cli TestCelerySystems runs these scenarios"
	deploy      = "installs into /etc and /usr/local and drives systemd: a production host's set-up (deploy/systemd's test verifies the units)"
	watch       = "watches a deployed system through its watch file (internal/killtest/watch and killtest/cli TestWatch* run watch against a leaky system)"
	placeholder = "PORT stands for the address the log gives"
	runs        = "twenty runs of a scenario: minutes; one run of the same file is README.md's and this page's line above"
	busy        = "loads the machine on purpose (CPU hogs and process churn) while the test suite runs"
)

// notRunnable lists, by "file: command", every command of the docs that TestDocCommands does not
// run, and why. Every other command runs: a new example in the docs is tested unless it is added
// here. An entry that matches no command fails the test, so the list cannot rot.
var notRunnable = map[string]string{
	"README.md: go test -race -count=1 -timeout 18m ./...":                                                                                        testGo,
	"README.md: go build -o bin/ ./cmd/... && PATH=$PWD/bin:$PATH killtest run":                                                                   suite,
	"docs/api.md: go test -race -count=1 ./internal/api/... ./internal/web/... ./internal/metrics/... ./internal/console/... ./internal/pool/...": testGo,
	"docs/api.md: go test -run '^$' -fuzz FuzzParseQuery -fuzztime 30s ./internal/api/":                                                           testGo,
	"docs/api.md: PROXYLINE_TEST_ARTIFACTS=/tmp/art go test -race -run TestBrowser -v ./internal/web/":                                            testGo,
	"docs/benchmarks.md: scripts/bench-check.sh":                                                                                                  script,
	"docs/benchmarks.md: MUBENG=/path/to/mubeng scripts/bench-check.sh":                                                                           script,
	"docs/benchmarks.md: go test -run '^$' -bench 'BenchmarkCheck$|CheckHTTPS' -benchmem ./internal/check":                                        testGo,
	"docs/benchmarks.md: scripts/bench-queue.sh [runs]":                                                                                           script,
	"docs/benchmarks.md: go test -run '^$' -bench 'Enqueue100k|RecordChunk' ./internal/queue/":                                                    testGo,
	"docs/benchmarks.md: go test -run '^$' -bench QueueVsCheck -benchtime 1x ./internal/queue/":                                                   testGo,
	"docs/benchmarks.md: go test -run '^$' -bench StartStop -benchtime 200x ./internal/supervise/":                                                testGo,
	"docs/benchmarks.md: go test -run '^$' -bench 'Snapshot|Tick|Enrich' -benchtime 2s ./internal/proctab ./internal/killtest/observe":            testGo,
	"docs/benchmarks.md: go build -o bin/ ./cmd/... && bin/killtest run --bin bin":                                                                suite,
	"docs/benchmarks.md: scripts/killtest-repeat.sh 20":                                                                                           script,
	"docs/benchmarks.md: go test -run XXX -bench . -benchtime 20x -cpu 1 ./internal/scrape/extract/":                                              testGo,
	"docs/benchmarks.md: go test -run XXX -bench Scrape50 -benchtime 5x ./internal/scrape/":                                                       testGo,
	"docs/benchmarks.md: go test -run XXX -bench CheckVsCheck -benchtime 4x ./internal/scrape/":                                                   testGo,
	"docs/benchmarks.md: RUNS=3 scripts/bench-rotate.sh":                                                                                          script,
	"docs/benchmarks.md: go test -run '^$' -bench Forward -benchtime 20000x ./internal/rotate/":                                                   testGo,
	"docs/benchmarks.md: go test -run '^$' -bench Scale -benchtime 3x -timeout 90m ./internal/api/":                                               testGo,
	"docs/benchmarks.md: PROXYLINE_BENCH_PROXIES=200000 PROXYLINE_BENCH_HISTORY=30 go test -run '^$' -bench Scale -benchtime 3x ./internal/api/":  testGo,
	"docs/benchmarks.md: PROXYLINE_BENCH_KEEP=/var/tmp/pb go test -run '^$' -bench Scale -benchtime 3x -timeout 90m ./internal/api/":              testGo,
	"docs/check.md: proxyline check -f proxies.txt --exec 'mubeng -f {in} --check -o {out} -t {timeout}'":                                         mubeng,
	"docs/check.md: proxyline check -f proxies.txt -c 100 --exec 'mubeng -f {in} --check -o {out} -t {timeout} -g {concurrency}'":                 mubeng,
	"docs/check.md: proxyline check -f proxies.txt --exec-pty --exec 'mubeng -f {in} --check -o {out} -t {timeout}'":                              mubeng,
	"docs/killtest.md: bin/killtest run --bin bin":                                                                                                suite,
	"docs/killtest.md: bin/killtest run --runs 20 --seed 1 my-system.yaml":                                                                        runs,
	"docs/killtest.md: apt-get install -y --no-install-recommends python3-celery python3-redis redis-server util-linux":                           apt,
	"docs/killtest.md: go build -o bin/ ./cmd/killtest ./cmd/proxyline && ln -s /path/to/mubeng bin/":                                             mubengLink,
	"docs/killtest.md: bin/killtest run --bin bin scenarios/examples/celery.yaml":                                                                 celery,
	"docs/killtest.md: bin/killtest run --bin bin internal/killtest/testdata/good-celery-fixed.yaml":                                              celery,
	"docs/killtest.md: go test -race -run TestCelerySystems ./internal/killtest/cli":                                                              testGo,
	"docs/testing.md: scripts/busy.sh 6 -- go test -race -count=1 ./internal/supervise/":                                                          busy,
	"docs/queue.md: go test -run '^$' -bench 'Enqueue100k|RecordChunk' ./internal/queue/":                                                         testGo,
	"docs/queue.md: go test -run '^$' -bench QueueVsCheck -benchtime 1x ./internal/queue/":                                                        testGo,
	"docs/queue.md: go test -race -run TestKillWorkerMidChunk -v ./internal/queue/ | grep 'running again'":                                        testGo,
	"docs/queue.md: scripts/bench-queue.sh":                                                                                                       script,
	"docs/rotate.md: curl -x http://127.0.0.1:8089 http://example.com/":                                                                           internet,
	"docs/rotate.md: curl -p -x http://127.0.0.1:8089 https://example.com/":                                                                       internet,
	"docs/rotate.md: curl --socks5-hostname 127.0.0.1:8089 https://example.com/":                                                                  internet,
	"docs/rotate.md: curl -x http://me-session-cart42:pw@127.0.0.1:8089 ...":                                                                      internet,
	"docs/rotate.md: go test -race -count=1 ./internal/rotate/ ./internal/proxydial/":                                                             testGo,
	"docs/rotate.md: go test -race -count=1 -run 'TestServe' ./internal/cli/":                                                                     testGo,
	"docs/rotate.md: go test -run XXX -fuzz FuzzSOCKSServer -fuzztime 30s ./internal/rotate/":                                                     testGo,
	"docs/rotate.md: killtest run --bin bin rotate-sigterm-tunnels rotate-upstream-killed":                                                        suite,
	"docs/rotate.md: RUNS=3 scripts/bench-rotate.sh":                                                                                              script,
	"docs/scrape.md: proxyline scrape --config scrape.toml -o candidates.txt":                                                                     public,
	"docs/scrape.md: proxyline scrape http://example.org/list.txt ./mine.csv > candidates.txt":                                                    internet,
	"docs/scrape.md: proxyline scrape --config scrape.toml --check --judge http://judge:8080/ --out-dir out/":                                     public,
	"docs/scrape.md: proxyline scrape --config scrape.toml --enqueue --judge http://judge:8080/":                                                  public,
	"docs/scrape.md: proxyline scrape":                                                                                                            internet,
	"docs/scrape.md: go test -race -count=1 ./internal/scrape/... ./internal/lab/ ./internal/cli/":                                                testGo,
	"docs/scrape.md: go test -run XXX -fuzz FuzzText -fuzztime 30s ./internal/scrape/extract/":                                                    testGo,
	"docs/scrape.md: go test -run XXX -bench . ./internal/scrape/extract/":                                                                        testGo,
	"docs/scrape.md: go test -run XXX -bench 'Scrape' -benchtime 3x ./internal/scrape/":                                                           testGo,
	"docs/operate.md: go build -o /usr/local/bin/ ./cmd/proxyline ./cmd/killtest":                                                                 deploy,
	"docs/operate.md: install -m 0644 deploy/systemd/proxyline.sysusers.conf /etc/sysusers.d/proxyline.conf && systemd-sysusers":                  deploy,
	"docs/operate.md: install -m 0644 deploy/systemd/*.service deploy/systemd/*.timer /etc/systemd/system/":                                       deploy,
	"docs/operate.md: install -d -m 0755 /etc/proxyline":                                                                                          deploy,
	"docs/operate.md: proxyline run --print-config > /etc/proxyline/run.toml":                                                                     deploy,
	"docs/operate.md: install -m 0644 deploy/systemd/watch.yaml /etc/proxyline/watch.yaml":                                                        deploy,
	"docs/operate.md: systemctl daemon-reload":                                                                                                    deploy,
	"docs/operate.md: systemctl enable --now proxyline.service killtest-watch.timer":                                                              deploy,
	"docs/operate.md: systemctl status proxyline.service":                                                                                         deploy,
	"docs/operate.md: journalctl -u proxyline.service -n 50":                                                                                      deploy,
	"docs/operate.md: curl -s http://127.0.0.1:8081/metrics | grep '^proxyline_pool_proxies'":                                                     deploy,
	"docs/operate.md: systemctl start killtest-watch.service":                                                                                     deploy,
	"docs/operate.md: systemctl status killtest-watch.service":                                                                                    deploy,
	"docs/operate.md: killtest watch --once /etc/proxyline/watch.yaml":                                                                            watch,
	"docs/operate.md: killtest watch --once --json --state /var/lib/killtest-watch/state.json watch.yaml":                                         watch,
	"docs/operate.md: killtest watch --alert '/usr/local/bin/page-ops --topic proxyline' watch.yaml":                                              watch,
	"docs/killtest.md: bin/killtest watch --once watch.yaml":                                                                                      watch,
	"README.md: killtest watch --once /etc/proxyline/watch.yaml":                                                                                  watch,
	"docs/run.md: curl -x http://127.0.0.1:8089 http://127.0.0.2:PORT/":                                                                           placeholder,
	"docs/run.md: go build -o bin/ ./cmd/... && bin/killtest run --bin bin run-lifecycle":                                                         suite,
	"docs/benchmarks.md: go test -run '^$' -bench Schedule -benchtime 20x -timeout 30m -v ./internal/run/":                                        testGo,
	"docs/benchmarks.md: go test -run '^$' -bench RecordChunk -benchtime 200x ./internal/queue/":                                                  testGo,
}
