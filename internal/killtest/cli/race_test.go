//go:build race

package cli

// raceEnabled makes the integration tests build the binaries with -race too.
const raceEnabled = true
