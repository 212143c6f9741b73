package wire

// TokenClaims are the claims of an offline token (a compact JWS), exactly
// these and in this order.
type TokenClaims struct {
	Issuer           string         `json:"iss"`
	Subject          string         `json:"sub"` // the organization's id
	Plan             string         `json:"plan"`
	Features         map[string]any `json:"features"`
	OrganizationName string         `json:"orgName"`
	IssuedAt         int64          `json:"iat"` // Unix seconds
	ExpiresAt        int64          `json:"exp"` // Unix seconds
	ID               string         `json:"jti"` // the license key's id
}

// JWTHeader is the protected header of an offline token, exactly these
// fields and in this order. Typ is always "JWT"; Kid names the public key
// (in the server's JWKS) that verifies the token, and that key's algorithm
// must equal Alg (AlgEdDSA or AlgRS256).
type JWTHeader struct {
	Alg string `json:"alg"`
	Typ string `json:"typ"`
	Kid string `json:"kid"`
}

// ValidateRequest is the body of POST APIPrefix+PathValidate. LicenseKey is
// required (missing and empty are the same); the server signs its answer
// when Nonce is set, and echoes the nonce in it.
type ValidateRequest struct {
	LicenseKey   string             `json:"licenseKey"`
	InstanceName string             `json:"instanceName,omitempty"`
	InstanceURL  string             `json:"instanceUrl,omitempty"`
	InstanceID   string             `json:"instanceId,omitempty"` // identifies an installation (sharing detection)
	Metrics      map[string]float64 `json:"metrics,omitempty"`    // usage counters checked against the plan's limits
	Nonce        string             `json:"nonce,omitempty"`
}

// ValidateAnswer is the 200 answer of the validate route, exactly these
// fields and in this order. Valid is always true in it (refusals are
// ErrorAnswer); the three trial and period fields are left out when the
// organization has none, ExpiresAt when the key never expires.
type ValidateAnswer struct {
	Valid            bool           `json:"valid"`
	Plan             string         `json:"plan"`
	Features         map[string]any `json:"features"`
	OrganizationID   string         `json:"organizationId"`
	OrganizationName string         `json:"organizationName"`
	Violations       []string       `json:"violations"`
	CurrentPeriodEnd *Time          `json:"currentPeriodEnd,omitempty"`
	TrialEndsAt      *Time          `json:"trialEndsAt,omitempty"`
	TrialDaysLeft    *int           `json:"trialDaysLeft,omitempty"`
	ExpiresAt        *Time          `json:"expiresAt,omitempty"`  // the key's expiry; absent when it never expires
	BillingURL       string         `json:"billingUrl,omitempty"` // absent when none is configured, so a client's fallback applies
	Nonce            string         `json:"nonce,omitempty"`
}

// ErrorAnswer is the body of every error answer, signed or not, exactly
// these fields and in this order: {"error": "..."}, plus Valid (false) on
// the validate route's 401 and 403, Hint on an owner route's 401,
// ExpiresAt on the validate route's 401 for an expired key, Plan and
// BillingURL on its plan-not-eligible 403, and Nonce on
// signed answers.
type ErrorAnswer struct {
	Valid      *bool  `json:"valid,omitempty"`
	Error      string `json:"error"`
	Hint       string `json:"hint,omitempty"` // what is wrong with the Authorization header's shape
	ExpiresAt  *Time  `json:"expiresAt,omitempty"`
	Plan       string `json:"plan,omitempty"`
	BillingURL string `json:"billingUrl,omitempty"`
	Nonce      string `json:"nonce,omitempty"`
}

// RevocationList is the 200 answer of GET APIPrefix+PathRevocations: the
// ids of the organization's revoked keys, which are the jti of their
// offline tokens, exactly these fields and in this order.
type RevocationList struct {
	OrganizationID string   `json:"organizationId"`
	Revoked        []string `json:"revoked"`
	Nonce          string   `json:"nonce,omitempty"`
}
