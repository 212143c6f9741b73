package p_test

import "fmt"

// n := p.Double(2, 3) in a comment is not compiled
func ExampleDouble() {
	n := p.Double(2)
	fmt.Println(n)
	// Output: 4
}
