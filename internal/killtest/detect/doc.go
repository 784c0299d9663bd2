// Package detect turns what the observer recorded into verdicts: orphans, zombies,
// stopped/unkillable processes, fd growth, memory growth, listening sockets and ports, and
// graceful exit. Each detector returns a Result that says pass, fail or unknown, with evidence;
// unknown always carries the reason the detector could not judge.
//
// The definitions, thresholds and evidence fields are documented in docs/killtest-detectors.md
// (they follow the "Detector definitions for killtest" of HYGIENE.md). The decision rules are
// pure functions over series so they can be tested with synthetic data; the detectors that poll
// (Orphans, Stopped) poll the observer with a deadline, never sleep blindly.
package detect
