package server

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// allowed says, for each flag with a constrained value, its environment
// variable and what it allows: the text of the one-line error for an
// invalid value.
var allowed = map[string]struct{ env, want string }{
	"addr":                {"LICENSING_ADDR", "host:port, such as 127.0.0.1:8080 (port 0 picks a free port)"},
	"data":                {"LICENSING_DATA", "a directory path"},
	"store":               {"LICENSING_STORE", "" /* built from Main.Stores */},
	"rate-limit":          {"LICENSING_RATE_LIMIT", "a whole number >= 0 (validations per minute; 0 turns the limiter off)"},
	"rate-burst":          {"LICENSING_RATE_BURST", "a whole number >= 1"},
	"owner-rate-limit":    {"LICENSING_OWNER_RATE_LIMIT", "a whole number >= 0 (owner requests per minute; 0 turns the limiter off)"},
	"token-lifetime":      {"LICENSING_TOKEN_LIFETIME", "a positive duration, such as 8760h"},
	"token-grace":         {"LICENSING_TOKEN_GRACE", "a duration >= 0, such as 168h"},
	"signing-key-overlap": {"LICENSING_SIGNING_KEY_OVERLAP", "a duration >= 0, such as 720h"},
	"cap-tokens":          {"LICENSING_CAP_TOKENS", "true or false"},
	"rotate-signing-keys": {"", "true or false"},
	"shutdown-delay":      {"LICENSING_SHUTDOWN_DELAY", "a duration >= 0, such as 10s"},
	"max-conns-per-addr":  {"LICENSING_MAX_CONNS_PER_ADDR", "a whole number >= 0 (open connections per client address; 0 turns the cap off)"},
	"trusted-proxies":     {"LICENSING_TRUSTED_PROXIES", "comma-separated networks or addresses of your proxies, such as 10.0.0.0/8,192.168.1.7 (never 0.0.0.0/0 or ::/0: any client could choose the address it is rate limited as)"},
}

// quote shows a value in an error, cut short if long.
func quote(v string) string {
	if len(v) > 64 {
		v = v[:64] + "..."
	}
	return strconv.Quote(v)
}

func (m *Main) envString(name, def string) string {
	if v := m.Getenv(name); v != "" {
		return v
	}
	return def
}

// envInt, envDur and envBool return the variable's value, or def when it is
// unset; an unparsable value is remembered as an error (reported unless the
// command line sets the flag) and def is returned.
func (m *Main) envInt(name string, def int) int {
	v := m.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		m.envErrs[name] = fmt.Errorf("%s=%s is not a whole number", name, quote(v))
		return def
	}
	return n
}

func (m *Main) envDur(name string, def time.Duration) time.Duration {
	v := m.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil {
		m.envErrs[name] = fmt.Errorf("%s=%s is not a duration", name, quote(v))
		return def
	}
	return d
}

func (m *Main) envBool(name string, def bool) bool {
	v := m.Getenv(name)
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		m.envErrs[name] = fmt.Errorf("%s=%s is not a boolean", name, quote(v))
		return def
	}
	return b
}

var (
	badValue = regexp.MustCompile(`^invalid (?:boolean )?value ("(?:[^"\\]|\\.)*") for (?:flag )?-([\w-]+)`)
	noValue  = regexp.MustCompile(`^flag needs an argument: -([\w-]+)`)
)

// flagError rewrites an error of flag.FlagSet.Parse as one line naming the
// flag and what it allows.
func flagError(err error) error {
	msg := err.Error()
	if m := badValue.FindStringSubmatch(msg); m != nil {
		if v, err := strconv.Unquote(m[1]); err == nil {
			m[1] = quote(v)
		}
		if a, ok := allowed[m[2]]; ok && a.want != "" {
			return fmt.Errorf("-%s %s: want %s", m[2], m[1], a.want)
		}
		return fmt.Errorf("-%s %s: invalid value", m[2], m[1])
	}
	if m := noValue.FindStringSubmatch(msg); m != nil {
		if a, ok := allowed[m[1]]; ok && a.want != "" {
			return fmt.Errorf("-%s needs a value: %s", m[1], a.want)
		}
		return fmt.Errorf("-%s needs a value", m[1])
	}
	return fmt.Errorf("%s (licensing-server -h lists the flags)", msg)
}

// checkFlags checks the parsed values. A value from the environment is
// reported under the variable's name, one from the command line under the
// flag's.
func (m *Main) checkFlags(fs *flag.FlagSet, args []string) error {
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %s: licensing-server takes only flags, or a command first (%s); licensing-server -h lists them", quote(fs.Arg(0)), commandNames)
	}
	onCommandLine := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { onCommandLine[f.Name] = true })
	names := make([]string, 0, len(allowed))
	for name := range allowed {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		a := allowed[name]
		if err := m.envErrs[a.env]; err != nil && !onCommandLine[name] {
			return fmt.Errorf("%w: want %s", err, m.want(name))
		}
	}
	stores := m.storeKinds()
	valid := map[string]bool{
		"addr":                validAddr(m.Addr),
		"data":                strings.TrimSpace(m.DataDir) != "",
		"store":               slices.Contains(stores, m.StoreKind),
		"rate-limit":          m.RateLimit >= 0,
		"rate-burst":          m.RateBurst >= 1,
		"owner-rate-limit":    m.OwnerRateLimit >= 0,
		"token-lifetime":      m.TokenLifetime > 0,
		"token-grace":         m.TokenGrace >= 0,
		"signing-key-overlap": m.SigningKeyOverlap >= 0,
		"shutdown-delay":      m.ShutdownDelay >= 0,
		"max-conns-per-addr":  m.MaxConnsPerAddr >= 0,
	}
	if _, err := parsePrefixes(m.TrustedProxies); err != nil {
		valid["trusted-proxies"] = false
	}
	for _, name := range names {
		if ok, checked := valid[name]; !checked || ok {
			continue
		}
		value := rawArg(args, name)
		if value == "" {
			value = fs.Lookup(name).Value.String()
		}
		if !onCommandLine[name] && allowed[name].env != "" && m.Getenv(allowed[name].env) != "" {
			return fmt.Errorf("%s=%s: %s", allowed[name].env, quote(m.Getenv(allowed[name].env)), m.problem(name))
		}
		return fmt.Errorf("-%s %s: %s", name, quote(value), m.problem(name))
	}
	if (m.TLSCert == "") != (m.TLSKey == "") { // refused before the data directory is touched
		return errors.New("-tls-cert and -tls-key go together (LICENSING_TLS_CERT, LICENSING_TLS_KEY): give both, or neither for plain HTTP")
	}
	return nil
}

// rawArg returns the last value given to flag name in args, as typed.
func rawArg(args []string, name string) string {
	v := ""
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		a = strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		if rest, ok := strings.CutPrefix(a, name+"="); ok {
			v = rest
		} else if a == name && i+1 < len(args) {
			v = args[i+1]
			i++
		}
	}
	return v
}

// want is what flag name allows.
func (m *Main) want(name string) string {
	if name == "store" {
		return strings.Join(m.storeKinds(), ", ")
	}
	return allowed[name].want
}

// problem says what is wrong with flag name's value, which checkFlags
// found invalid: what the flag allows, and for the two mistakes that
// "want" does not explain, the cause.
func (m *Main) problem(name string) string {
	switch {
	case name == "addr":
		if _, port, err := net.SplitHostPort(m.Addr); err == nil {
			if n, err := strconv.Atoi(port); err == nil && (n < 0 || n > 65535) {
				return fmt.Sprintf("port %d is out of range: want 0 to 65535 (0 picks a free port)", n)
			}
		}
	case name == "store" && m.StoreKind == "postgres":
		return "this binary has no PostgreSQL store: run licensing-server-pg (go install github.com/licensekit/licensing/pgstore/cmd/licensing-server-pg), which takes the same flags and -store postgres; this one takes " + m.want(name)
	}
	return "want " + m.want(name)
}

// storeKinds lists the values of -store.
func (m *Main) storeKinds() []string {
	kinds := []string{"file", "memory"}
	extra := make([]string, 0, len(m.Stores))
	for k := range m.Stores {
		extra = append(extra, k)
	}
	sort.Strings(extra)
	return append(kinds, extra...)
}

// validAddr accepts host:port with a port from 0 to 65535 or a service name.
func validAddr(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return false
	}
	if n, err := strconv.Atoi(port); err == nil {
		return n >= 0 && n <= 65535
	}
	return !strings.ContainsAny(port, " /")
}

// commandNames lists the commands that may come before any flag.
const commandNames = "owner-token, public-keys, scan, backup, restore"

// usage is what -h prints before the flags.
const usage = `usage: licensing-server [flags]                    run the server (flags below)
       licensing-server owner-token [-data DIR]    replace the demo owner's lost token (server stopped)
       licensing-server public-keys [-data DIR]    print the public signing keys as PEM
       licensing-server scan [-allow FILE] [PATH]  find license keys in files
       licensing-server backup -data DIR -o FILE   copy a running server's state
       licensing-server restore -data NEWDIR FILE  restore a backup into a new data directory
flags:
`
