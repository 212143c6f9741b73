package main

// A target with "+hooks" (memory+hooks, file+hooks) sends webhooks of
// every event type to a receiver that never answers: what a hanging
// receiver costs the validate route.

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
)

// hookSecret is the hanging receiver's endpoint secret (32 bytes).
const hookSecret = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

// startHangingReceiver accepts deliveries and never answers them until
// stop is called.
func startHangingReceiver() (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	done := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-done:
		case <-r.Context().Done():
		}
	})}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String() + "/hooks", func() { close(done); srv.Close() }, nil
}

// writeHookedConfig writes writeConfig's configuration with one webhook
// endpoint, url, for every event type.
func writeHookedConfig(path, token, url string) error {
	if err := writeConfig(path, token); err != nil {
		return err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	doc := strings.TrimSuffix(strings.TrimSpace(string(b)), "}") +
		fmt.Sprintf(`,"webhooks":[{"url":%q,"secret":%q}]}`, url, hookSecret)
	return os.WriteFile(path, []byte(doc), 0o600)
}
