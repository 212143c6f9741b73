// Package licensing issues license keys to the self-hosted copies of a SaaS
// product and answers their validation calls.
//
// An organization owner creates a key; the self-hosted instance sends it to
// the validate route and learns its plan, features, trial and billing
// period; the owner lists and revokes keys, and may download an offline
// token. The embedding application says who its users and organizations are
// (Authenticator, Organizations); this package owns the keys (Store).
//
// # Where things are
//
//   - [Service] (licensing.go) is the key lifecycle: [Service.CreateKey],
//     [Service.ListKeys], [Service.RevokeKey] (keys.go),
//     [Service.ValidateKey] (validate.go), [Service.IssueToken]
//     (token.go), and a key's lifetime, [Service.SetKeyExpiry] and
//     [Service.RotateKey] (lifetime.go). [Config] configures it; [New]
//     fills in the defaults. [Organization] and [Actor] (organization.go)
//     are what the embedding application tells it; [Event] (events.go) is
//     what it tells back.
//   - [Store] (store.go) is the storage contract and [Key] its record;
//     [MemoryStore] (memstore.go) is the in-memory one, package filestore a
//     durable one, and the nested module pgstore a PostgreSQL one. Package
//     storetest is the public conformance suite a store of your own runs.
//   - Keys (keyformat.go): 64 lower-case hex characters, 56 of randomness and an
//     8-character CRC-32 checksum ([ParseKey] checks one as typed; lists show
//     it masked, as [Key.MaskedKey]).
//     Stores keep a [Hasher]'s lookup value and digest, never the key
//     (hasher.go); the pepper's fingerprint lets a store refuse another
//     pepper (pepper.go), and [LoadOrCreatePepper] keeps the pepper in a
//     file (pepperfile.go).
//   - [Handler] (http.go, and http*.go by route group) serves the HTTP API;
//     [HandlerConfig] holds what only the transport needs (rate limits,
//     proxies, body size); its zero value rate-limits validation and owner
//     requests at the reference server's defaults, and only [Unlimited]
//     turns a limiter off (handlerconfig.go). The contract is docs/API.md,
//     with docs/openapi.yaml beside it.
//   - Errors (errors.go): every error is an [*Error] or wraps one, with a
//     [Code] that the Handler maps to one HTTP status (httperr.go).
//   - Metrics (observer.go): an [Observer] in [Config] receives each
//     request (route pattern, status, duration) and each validation's
//     [Outcome], to feed the embedder's metrics system.
//
// # Embedding
//
//	svc, err := licensing.New(licensing.Config{
//		Store:         licensing.NewMemoryStore(),
//		Organizations: myOrgs, // implements licensing.Organizations
//		Pepper:        pepper, // from licensing.LoadOrCreatePepper: the same at every start
//		Policy: licensing.Policy{
//			RequiredFeature: "selfHostingLicense",
//			Issuer:          "licensing.example.com",
//		},
//	})
//	if err != nil {
//		return err
//	}
//	defer svc.Close(context.Background())
//	mux.Handle("/api/v1/licensing/", licensing.NewHandler(svc, myAuth, licensing.HandlerConfig{})) // rate limited by default
//
// # Security model
//
// A full license key exists only in the answer that creates it; stores keep a
// lookup value and a digest (HMAC-SHA-256 under a server pepper by default,
// Argon2id optionally), and lists, events, logs and errors show masked keys
// only. Keys carry a checksum, so mistyped or invented keys are rejected
// before any store access, and digests are compared in constant time. Every
// input is bounded: body size, field lengths, number of metrics, and the
// rate limiter's memory.
package licensing
