// Package p's doc calls Double with two arguments, which no test does:
//
//	n := p.Double(2, 3)
package p

// Double returns 2n.
func Double(n int) int { return 2 * n }
