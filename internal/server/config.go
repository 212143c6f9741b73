package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/licensekit/licensing"
)

// FileConfig is the reference server's JSON configuration file.
type FileConfig struct {
	Issuer          string                    `json:"issuer"`
	BillingURL      string                    `json:"billingUrl"`
	RequiredFeature string                    `json:"requiredFeature"`
	Plans           map[string]map[string]any `json:"plans"`
	Organizations   []OrgConfig               `json:"organizations"`
	Tokens          []TokenConfig             `json:"tokens"`
	// Limits maps metric names to plan features; absent means the library's default map (licensing.Policy.Limits).
	Limits map[string]string `json:"limits"`
	// NotEligibleMessage and ValidateNotEligibleMessage are the texts for a
	// plan without RequiredFeature (create and token; validate); they
	// should name the vendor's upgrade path. Absent: the library's defaults.
	NotEligibleMessage         string `json:"notEligibleMessage"`
	ValidateNotEligibleMessage string `json:"validateNotEligibleMessage"`
	// Webhooks are the endpoints that receive the store's events
	// (docs/server.md, "Webhooks"); read at start, a reload keeps them.
	Webhooks []WebhookConfig `json:"webhooks"`
	// WebhookDelivery tunes the deliveries' timeout and retries; absent
	// or zero fields take the defaults of package internal/webhook.
	WebhookDelivery WebhookDeliveryConfig `json:"webhookDelivery"`
}

// WebhookConfig is one webhook endpoint of FileConfig.
type WebhookConfig struct {
	URL    string   `json:"url"`    // http or https; receives a POST per event
	Secret string   `json:"secret"` // "whsec_" and the base64 of 24 to 64 random bytes
	Events []string `json:"events"` // the event types sent; absent or empty: every type
}

// WebhookDeliveryConfig holds Go durations ("10s", "5m") for
// webhook.Config; "" takes the default.
type WebhookDeliveryConfig struct {
	Timeout      string `json:"timeout"`      // one attempt; default 10s
	FirstRetry   string `json:"firstRetry"`   // wait before the second attempt, doubled each time; default 5s
	MaxRetryWait string `json:"maxRetryWait"` // longest wait between attempts; default 5m
	MaxRetryTime string `json:"maxRetryTime"` // no attempt starts later than this after the first; default 1h
	MaxAttempts  int    `json:"maxAttempts"`  // then the delivery is given up; default 10
	PollInterval string `json:"pollInterval"` // how often the log is read for new events; default 1s
}

// OrgConfig is one organization of FileConfig.
type OrgConfig struct {
	ID               string   `json:"id"`
	Name             string   `json:"name"`
	OwnerID          string   `json:"ownerId"`
	Members          []string `json:"members"`
	Plan             string   `json:"plan"`
	Active           bool     `json:"active"`
	CurrentPeriodEnd *string  `json:"currentPeriodEnd"`
	TrialEndsAt      *string  `json:"trialEndsAt"`
}

// TokenConfig maps the SHA-256 of a bearer token to a user.
type TokenConfig struct {
	SHA256 string `json:"sha256"`
	UserID string `json:"userId"`
}

// LoadConfig reads and checks a configuration file. Its errors name the
// offending field.
func LoadConfig(path string) (*FileConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if t := bytes.TrimSpace(b); len(t) == 0 || t[0] != '{' {
		return nil, fmt.Errorf("config %s: the file must hold one JSON object", path)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	var c FileConfig
	err = dec.Decode(&c)
	if err == nil && dec.More() {
		err = errors.New("data after the configuration object (a half-saved edit?)")
	} else if _, terr := dec.Token(); err == nil && terr != io.EOF {
		err = errors.New("data after the configuration object (a half-saved edit?)")
	}
	if err != nil {
		var typeErr *json.UnmarshalTypeError
		var syntaxErr *json.SyntaxError
		switch {
		case errors.As(err, &typeErr):
			return nil, fmt.Errorf("config %s:%s: field %s: wrong type (%s)", path, lineColumn(b, typeErr.Offset-1), typeErr.Field, typeErr.Value)
		case errors.As(err, &syntaxErr):
			return nil, fmt.Errorf("config %s:%s: %w", path, lineColumn(b, syntaxErr.Offset-1), err)
		case errors.Is(err, io.ErrUnexpectedEOF):
			return nil, fmt.Errorf("config %s:%s: the JSON ends early, a } or ] is missing (%w)", path, lineColumn(b, int64(len(b))), err)
		}
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if _, err := c.compile(); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return &c, nil
}

// lineColumn is the 1-based line:column of the byte at offset off in b,
// as a text editor shows it (columns count bytes). The json errors'
// Offset is just past the byte that went wrong.
func lineColumn(b []byte, off int64) string {
	off = min(max(off, 0), int64(len(b)))
	before := b[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := len(before) - bytes.LastIndexByte(before, '\n')
	return fmt.Sprintf("%d:%d", line, col)
}

// directory is the compiled, immutable form of a FileConfig.
type directory struct {
	orgs     map[string]licensing.Organization
	userOrgs map[string][]string // user -> organizations, owned or joined, in file order
	tokens   []tokenEntry
}

type tokenEntry struct {
	digest [sha256.Size]byte
	userID string
}

func parseTime(field string, s *string) (time.Time, error) {
	if s == nil || *s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, *s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: not an RFC 3339 time: %q", field, *s)
	}
	return t.UTC(), nil
}

func (c *FileConfig) compile() (*directory, error) {
	d := &directory{orgs: map[string]licensing.Organization{}, userOrgs: map[string][]string{}}
	for name, features := range c.Plans {
		if name == "" {
			return nil, errors.New("plans: empty plan name")
		}
		for f, v := range features {
			switch v.(type) {
			case bool, json.Number:
			default:
				return nil, fmt.Errorf("plans.%s.%s: must be a boolean or a number", name, f)
			}
		}
	}
	if c.RequiredFeature != "" {
		found := false
		for _, features := range c.Plans {
			_, ok := features[c.RequiredFeature]
			found = found || ok
		}
		if !found && len(c.Plans) > 0 {
			return nil, fmt.Errorf("requiredFeature: %q is not a feature of any plan", c.RequiredFeature)
		}
	}
	for i, o := range c.Organizations {
		field := func(name string) string { return fmt.Sprintf("organizations[%d].%s", i, name) }
		switch {
		case o.ID == "":
			return nil, fmt.Errorf("%s: required", field("id"))
		case d.orgs[o.ID].ID != "":
			return nil, fmt.Errorf("%s: duplicate id %q", field("id"), o.ID)
		case o.OwnerID == "":
			return nil, fmt.Errorf("%s: required", field("ownerId"))
		case o.Plan == "":
			return nil, fmt.Errorf("%s: required", field("plan"))
		}
		features, ok := c.Plans[o.Plan]
		if !ok {
			return nil, fmt.Errorf("%s: unknown plan %q", field("plan"), o.Plan)
		}
		pe, err := parseTime(field("currentPeriodEnd"), o.CurrentPeriodEnd)
		if err != nil {
			return nil, err
		}
		te, err := parseTime(field("trialEndsAt"), o.TrialEndsAt)
		if err != nil {
			return nil, err
		}
		f := make(map[string]any, len(features))
		for k, v := range features {
			if n, ok := v.(json.Number); ok {
				if x, err := n.Float64(); err == nil {
					f[k] = x
					continue
				}
			}
			f[k] = v
		}
		d.orgs[o.ID] = licensing.Organization{ID: o.ID, Name: o.Name, OwnerID: o.OwnerID, Plan: o.Plan,
			Features: f, Active: o.Active, CurrentPeriodEnd: pe, TrialEndsAt: te}
		for _, u := range append([]string{o.OwnerID}, o.Members...) {
			if u == "" {
				return nil, fmt.Errorf("%s: empty user id", field("members"))
			}
			d.userOrgs[u] = append(d.userOrgs[u], o.ID)
		}
	}
	for i, tk := range c.Tokens {
		var e tokenEntry
		if len(tk.SHA256) != hex.EncodedLen(sha256.Size) {
			return nil, fmt.Errorf("tokens[%d].sha256: must be 64 hex characters (the SHA-256 of the token)", i)
		}
		if _, err := hex.Decode(e.digest[:], []byte(tk.SHA256)); err != nil {
			return nil, fmt.Errorf("tokens[%d].sha256: must be 64 hex characters (the SHA-256 of the token)", i)
		}
		if tk.UserID == "" {
			return nil, fmt.Errorf("tokens[%d].userId: required", i)
		}
		e.userID = tk.UserID
		d.tokens = append(d.tokens, e)
	}
	for metric, feature := range c.Limits {
		if metric == "" || feature == "" {
			return nil, fmt.Errorf("limits: empty metric or feature name")
		}
	}
	if _, err := c.webhookConfig(); err != nil {
		return nil, err
	}
	return d, nil
}

// checkOwners finds an organization whose owner has no token (nobody can
// manage its keys) and a token whose user belongs to no organization (it
// opens nothing): a server started so answers the owner 401 or 403 with no
// hint that the file is the cause, so a start refuses it. A reload only
// warns: the edit may be an operator cutting off a leaked token or an
// organization, and refusing it would keep serving what they removed.
func (c *FileConfig) checkOwners() error {
	hasToken, member := map[string]bool{}, map[string]bool{}
	for _, tk := range c.Tokens {
		hasToken[tk.UserID] = true
	}
	for _, o := range c.Organizations {
		member[o.OwnerID] = true
		for _, u := range o.Members {
			member[u] = true
		}
	}
	for i, o := range c.Organizations {
		if !hasToken[o.OwnerID] {
			return fmt.Errorf("organizations[%d].ownerId: owner %s of %s has no token: add {\"sha256\": \"<hex SHA-256 of a new token>\", \"userId\": %s} to tokens (printf %%s \"$TOKEN\" | sha256sum)",
				i, quote(o.OwnerID), quote(o.ID), quote(o.OwnerID))
		}
	}
	for i, tk := range c.Tokens {
		if !member[tk.UserID] {
			return fmt.Errorf("tokens[%d].userId: user %s owns or joins no organization: name it as an organization's ownerId or in its members, or remove the token", i, quote(tk.UserID))
		}
	}
	return nil
}

// DefaultIssuer is the iss claim of offline tokens when the configuration
// file names none.
const DefaultIssuer = "licensing.localhost"

func (c *FileConfig) policy() licensing.Policy {
	p := licensing.Policy{RequiredFeature: c.RequiredFeature, BillingURL: c.BillingURL, Limits: c.Limits, Issuer: c.Issuer,
		NotEligibleMessage: c.NotEligibleMessage, ValidateNotEligibleMessage: c.ValidateNotEligibleMessage}
	if p.Issuer == "" {
		p.Issuer = DefaultIssuer
	}
	return p
}

// Directory serves organizations and authenticates owners from the current
// configuration; Swap replaces it atomically (SIGHUP).
type Directory struct {
	cur atomic.Pointer[directory]
}

var (
	_ licensing.Organizations = (*Directory)(nil)
	_ licensing.Authenticator = (*Directory)(nil)
)

// Swap installs a new configuration.
func (d *Directory) Swap(c *FileConfig) error {
	dir, err := c.compile()
	if err != nil {
		return err
	}
	d.cur.Store(dir)
	return nil
}

// Organization implements licensing.Organizations.
func (d *Directory) Organization(ctx context.Context, id string) (licensing.Organization, error) {
	if o, ok := d.cur.Load().orgs[id]; ok {
		return o, nil
	}
	return licensing.Organization{}, licensing.ErrOrgNotFound
}

// Authenticate implements licensing.Authenticator: the bearer token's SHA-256
// is compared in constant time with every configured digest.
func (d *Directory) Authenticate(r *http.Request) (licensing.Actor, error) {
	tok, err := licensing.BearerToken(r)
	if err != nil {
		return licensing.Actor{}, err
	}
	sum := sha256.Sum256([]byte(tok))
	dir := d.cur.Load()
	user := ""
	for _, e := range dir.tokens {
		if subtle.ConstantTimeCompare(sum[:], e.digest[:]) == 1 && user == "" {
			user = e.userID
		}
	}
	if user == "" {
		return licensing.Actor{}, licensing.ErrUnauthorized
	}
	return licensing.ResolveActor(r, user, dir.userOrgs[user])
}
