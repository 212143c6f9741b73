package licensing_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/filestore"
)

// What held: eight imports of one key at once (upper and lower case
// spellings mixed), on the memory and the file store: exactly one wins, the
// others get ErrDuplicateKey, one key.created event; creation-time bounds.
func TestConcurrentImportOfOneKey(t *testing.T) {
	stores := map[string]func(t *testing.T) licensing.Store{
		"memory": func(t *testing.T) licensing.Store { return licensing.NewMemoryStore() },
		"file": func(t *testing.T) licensing.Store {
			s, err := filestore.Open(t.TempDir(), filestore.Options{Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
	}
	for name, mk := range stores {
		t.Run(name, func(t *testing.T) {
			is := is.New(t)
			var created atomic.Int32
			svc, err := licensing.New(licensing.Config{
				Store: mk(t),
				Organizations: licensing.OrganizationsFunc(func(ctx context.Context, id string) (licensing.Organization, error) {
					return licensing.Organization{ID: id, OwnerID: "u", Plan: "b", Active: true,
						Features: map[string]any{"selfHostingLicense": true}}, nil
				}),
				Pepper: []byte("0123456789abcdef0123456789abcdef-review4"),
				Policy: licensing.Policy{RequiredFeature: "selfHostingLicense", Issuer: "licensing.test"},
				Logger: slog.New(slog.DiscardHandler),
				OnEvent: func(_ context.Context, e licensing.Event) {
					if e.Type == licensing.EventKeyCreated {
						created.Add(1)
					}
				},
			})
			is.NoErr(err)
			defer svc.Close(context.Background())
			key := "c0ffee00" + strings.Repeat("ab", 28)
			var wins, dups atomic.Int32
			var wg sync.WaitGroup
			for i := range 8 {
				wg.Go(func() {
					k := key
					if i%2 == 1 {
						k = strings.ToUpper(key)
					}
					_, err := svc.ImportKey(context.Background(), "org-seed", k, time.Time{})
					switch {
					case err == nil:
						wins.Add(1)
					case errors.Is(err, licensing.ErrDuplicateKey):
						dups.Add(1)
					default:
						t.Error(err)
					}
				})
			}
			wg.Wait()
			is.Equal(wins.Load(), int32(1))
			is.Equal(dups.Load(), int32(7))
			is.NoErr(svc.Close(context.Background()))
			is.Equal(created.Load(), int32(1))
			for _, at := range []time.Time{time.Unix(0, 0), time.Unix(-1, 0), time.Unix(0, 1<<63-1)} {
				_, err := svc.ImportKey(context.Background(), "org-seed", "d"+key[1:], at)
				is.Equal(licensing.ErrorCode(err), licensing.CodeInvalid)
			}
		})
	}
}
