package licensing

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/licensekit/licensing/internal/wire"
	"github.com/matryer/is"
)

type oneOwner struct{}

func (oneOwner) Authenticate(r *http.Request) (Actor, error) {
	return Actor{UserID: "u", OrganizationID: "o"}, nil
}

func (oneOwner) Organization(ctx context.Context, id string) (Organization, error) {
	return Organization{ID: "o", OwnerID: "u", Active: true}, nil
}

// TestListStreamIsTheOldAnswer: the streamed list is byte for byte the
// answer the handler made before it streamed, json.Marshal of
// struct{Keys []listedKey} and a newline, at and around the chunk size,
// with keys inserted out of order, sharing creation times, and holding
// values that encoding/json escapes.
func TestListStreamIsTheOldAnswer(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 123456789, time.UTC)
	for _, n := range []int{0, 1, listChunk - 1, listChunk, listChunk + 1, 2*listChunk + 1} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			is := is.New(t)
			st := NewMemoryStore()
			svc, err := New(Config{Store: st, Organizations: oneOwner{}, Pepper: []byte("0123456789abcdef0123456789abcdef"),
				Logger: slog.New(slog.DiscardHandler), Policy: Policy{Issuer: "x"}})
			is.NoErr(err)
			defer svc.Close(context.Background())
			for i := 0; i < n; i++ {
				k := Key{ID: uuid.Must(uuid.NewRandom()).String(), OrganizationID: "o", LookupValue: fmt.Sprint("l", i), Digest: "d",
					MaskedKey: "ab...cd", InstanceName: "<img>&\u2028\"\x7f" + fmt.Sprint(i%3), Active: i%5 != 0,
					CreatedAt: base.Add(time.Duration(i%7) * time.Second)} // out of order, ties
				if i%4 == 0 {
					k.LastMetrics = map[string]float64{"z": 1e21, "a": 0.000001, "m": 123456789012}
					k.LastViolations = []string{"x<y"}
					k.InstanceURL = "https://a/?a=1&b=2"
					k.LastValidatedAt, k.ActivatedAt = base.Add(time.Hour), base.Add(time.Minute)
				}
				if i%9 == 0 {
					k.LastMetrics, k.LastViolations = map[string]float64{}, []string{}
				}
				is.NoErr(st.CreateKey(context.Background(), k))
			}
			rec := httptest.NewRecorder()
			NewHandler(svc, oneOwner{}, HandlerConfig{}).ServeHTTP(rec, httptest.NewRequest("GET", "/keys", nil))
			is.Equal(rec.Code, 200)

			keys, err := st.ListKeys(context.Background(), "o", KeyCursor{}, 0)
			is.NoErr(err)
			out := make([]listedKey, len(keys))
			for i, k := range keys {
				out[i] = listedKey{ID: k.ID, LicenseKey: k.MaskedKey, InstanceName: optString(k.InstanceName),
					InstanceURL: optString(k.InstanceURL), Active: k.Active, LastValidatedAt: wire.Time(k.LastValidatedAt),
					ActivatedAt: wire.Time(k.ActivatedAt), CreatedAt: wire.Time(k.CreatedAt),
					InstanceMetrics: k.LastMetrics, LastViolations: k.LastViolations}
			}
			old, err := json.Marshal(struct {
				OrganizationID   string      `json:"organizationId"`
				OrganizationName string      `json:"organizationName"`
				Keys             []listedKey `json:"keys"`
			}{"o", "", out})
			is.NoErr(err)
			is.Equal(rec.Body.String(), string(old)+"\n") // the same bytes
		})
	}
}
