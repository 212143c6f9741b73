// Command licensing-server is the reference licensing server. See
// docs/server.md for its flags and configuration file.
package main

import (
	"os"

	"github.com/licensekit/licensing/internal/server"
)

func main() {
	var m server.Main
	os.Exit(m.Main(os.Args[1:]))
}
