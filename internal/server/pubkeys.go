package server

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
)

// publicKeysCommand is "licensing-server public-keys [-data DIR]": it prints
// the PEM that GET /api/v1/licensing/public-keys.pem serves (RSA first, then
// Ed25519, then keys retired less than -signing-key-overlap ago), reading
// the key files without writing anything and without taking the lock, so it
// also works while the server runs. It returns the exit code.
func (m *Main) publicKeysCommand(args []string) int {
	if m.Getenv == nil {
		m.Getenv = os.Getenv
	}
	if m.Stderr == nil {
		m.Stderr = os.Stderr
	}
	if m.Stdout == nil {
		m.Stdout = os.Stdout
	}
	m.logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	fs := flag.NewFlagSet("licensing-server public-keys", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&m.DataDir, "data", m.envString("LICENSING_DATA", "./licensing-data"), "state directory (LICENSING_DATA)")
	fs.StringVar(&m.SigningKey, "signing-key", m.envString("LICENSING_SIGNING_KEY", ""), "Ed25519 private key (PEM); default <data>/signing-ed25519.pem (LICENSING_SIGNING_KEY)")
	fs.StringVar(&m.RSASigningKey, "rsa-signing-key", m.envString("LICENSING_RSA_SIGNING_KEY", ""), "RSA private key (PEM); default <data>/signing-rsa.pem (LICENSING_RSA_SIGNING_KEY)")
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprintln(m.Stderr, "usage: licensing-server public-keys [-data DIR]: print the public signing keys as PEM")
		fs.SetOutput(m.Stderr)
		fs.PrintDefaults()
		return 0
	case err != nil:
		fmt.Fprintln(m.Stderr, "licensing-server public-keys:", flagError(err))
		return 2
	case fs.NArg() > 0:
		fmt.Fprintf(m.Stderr, "licensing-server public-keys: unexpected argument %s: it takes only -data, -signing-key and -rsa-signing-key\n", quote(fs.Arg(0)))
		return 2
	}
	keys, err := m.signingKeys(false)
	if err != nil {
		fmt.Fprintln(m.Stderr, "licensing-server public-keys:", err)
		return 1
	}
	if _, err := m.Stdout.Write(keys.PublicKeysPEM()); err != nil {
		fmt.Fprintln(m.Stderr, "licensing-server public-keys:", err)
		return 1
	}
	return 0
}
