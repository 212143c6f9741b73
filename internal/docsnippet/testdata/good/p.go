// Package p is documented with code that its test compiles:
//
//	n := p.Double(2)
//	fmt.Println(n)       // 4
//
// and a shell command, left alone:
//
//	go test ./...
package p

// Double returns 2n.
func Double(n int) int { return 2 * n }
