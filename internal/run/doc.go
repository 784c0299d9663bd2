// Package run is `proxyline run`: one long-running process that keeps a pool of proxies
// checked. It scrapes its sources on a schedule, schedules every proxy's next check in the pool
// (new candidates first, live proxies every re-check interval, dead ones with exponential
// back-off; the schedule is in the database, so a restart resumes it), runs the queue's workers
// in-process or as supervised child processes, serves the rotating proxy and the console (web
// UI, JSON API, /metrics, River UI) on loopback by default, and prunes the history in the
// background. With Lab it starts the loopback lab first and points sources and judge at it.
//
// Service is the whole; Scheduler, the scrape loop, the pruner and the worker pool are its
// parts, each with the lifecycle of docs/lifecycle.md. Config is the TOML file (defaults.toml is
// its documented default, printed by --print-config). See docs/run.md.
package run
