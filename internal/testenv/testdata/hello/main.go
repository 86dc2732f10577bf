// Command hello is the program the tests of GoBuild build.
package main

import "fmt"

func main() { fmt.Println("hello") }
