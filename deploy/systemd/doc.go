// Package systemd holds proxyline's systemd unit files (proxyline.service, proxyline-worker@,
// killtest-watch.service and .timer) and the watch file the timer runs; it has no code, only
// the test that checks the units with systemd-analyze verify and against the rules of
// docs/operate.md.
package systemd
