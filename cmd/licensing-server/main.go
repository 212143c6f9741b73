// Command licensing-server is the reference licensing server. See the
// README for its flags and configuration file.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/licensekit/licensing/internal/server"
)

func main() {
	var m server.Main
	if err := m.ParseFlags(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	if err := m.Run(ctx, hup); err != nil {
		fmt.Fprintln(os.Stderr, "licensing-server:", err)
		os.Exit(1)
	}
}
