// Command hello is the program testkit's BuildBinary tests build: it prints its arguments.
package main

import (
	"fmt"
	"os"
)

func main() { fmt.Println("hello", os.Args[1:]) }
