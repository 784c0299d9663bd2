// Command tool imports test support from production code.
package main

import _ "example.com/badmod/internal/testdb"

func main() {}
