//go:build !race

package testkit

// raceEnabled is true when this binary was built with -race: the programs BuildBinary builds are
// then built with -race too.
const raceEnabled = false
