// Package licensing issues license keys to the self-hosted copies of a SaaS
// product and answers their validation calls.
//
// An organization owner creates a key (Service.CreateKey, or POST
// /api/v1/licensing/keys through NewHandler); the self-hosted instance sends
// it to POST /api/v1/licensing/validate and learns its plan, features, trial
// and billing period. The owner lists and revokes keys. The embedding
// application supplies who its users and organizations are (Authenticator,
// Organizations); this package owns the keys (Store).
//
// # Embedding
//
//	hasher, _ := licensing.NewHMACHasher(pepper) // pepper: >= 32 secret bytes
//	svc, err := licensing.New(licensing.Config{
//		Store:         licensing.NewMemoryStore(),
//		Organizations: myOrgs, // implements licensing.Organizations
//		Hasher:        hasher,
//		Policy:        licensing.Policy{RequiredFeature: "selfHostingLicense"},
//	})
//	if err != nil { ... }
//	defer svc.Close(context.Background())
//	mux.Handle("/api/v1/licensing/", licensing.NewHandler(svc, myAuth))
//
// # Security model
//
// A full license key exists only in the answer that creates it; stores keep a
// lookup value and a digest (HMAC-SHA-256 under a server pepper by default,
// Argon2id optionally), and lists, events, logs and errors show masked keys
// only. Keys carry a CRC-32 checksum, so mistyped or invented keys are
// rejected before any store access, and digests are compared in constant
// time. Every input is bounded: body size, field lengths, number of metrics,
// and the rate limiter's memory.
package licensing
