// Package testkit is the one test-support package of proxyline: waiting for a condition with a
// deadline ([WaitFor], [WaitForErr]), building a program of this module once per test binary
// ([BuildBinary]) and a leak-checking TestMain ([Main]: goroutines, file descriptors, child
// processes).
//
// It is imported by _test.go files only. Every test package that starts goroutines, processes
// or servers calls it from its TestMain:
//
//	func TestMain(m *testing.M) { testkit.Main(m) }
package testkit
