package p_test

import "fmt"

func ExampleDouble() {
	n := p.Double(2)
	fmt.Println(n) // 4
	// Output: 4
}
