package server_test

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/licensekit/licensing/internal/server"
)

// fieldNamed matches an error that names what is wrong in the file: a
// top-level field, an indexed field path, or the unknown field.
var fieldNamed = regexp.MustCompile(`(^|[ :])(issuer|billingUrl|requiredFeature|plans(\.[^:]*)?|organizations(\[\d+\])?\.\w+|tokens\[\d+\]\.\w+|limits|field [\w.]+: wrong type)(:|$| )|unknown field "`)

// FuzzLoadConfig: LoadConfig never panics; an accepted file is accepted
// again after a JSON round trip of what it read; an error names the file,
// and, unless the file is not JSON at all, the field.
func FuzzLoadConfig(f *testing.F) {
	for _, s := range []string{
		`{"issuer":"i","billingUrl":"https://b.example","requiredFeature":"selfHostingLicense",
		  "plans":{"business":{"selfHostingLicense":true,"maxCompanies":10}},
		  "organizations":[{"id":"o","name":"O","ownerId":"u","members":["m"],"plan":"business","active":true,
		    "currentPeriodEnd":"2027-03-20T00:00:00+00:00","trialEndsAt":null}],
		  "tokens":[{"sha256":"` + strings.Repeat("ab", 32) + `","userId":"u"}],
		  "limits":{"companyCount":"maxCompanies"}}`,
		`{"plans":{"a":{}},"organizations":[{"id":"o","ownerId":"u","plan":"b","active":true}]}`,
		`{"plans":{"a":{"f":"x"}}}`,
		`{"organizations":[{"id":5}]}`,
		`{"tokens":[{"sha256":"zz","userId":"u"}]}`,
		`{"tokens":[{"sha256":"` + strings.Repeat("ab", 34) + `","userId":"u"}]}`,
		`{"organisations":[]}`,
		`{"limits":{"":"x"}}`,
		`{"plans":{"a":{"f":1e400}}}`,
		`{"organizations":[{"id":"o","ownerId":"u","plan":"a"},{"id":"o","ownerId":"u","plan":"a"}],"plans":{"a":{}}}`,
		`{`, ``, `null`, `[]`, `"x"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<20 {
			return
		}
		path := filepath.Join(t.TempDir(), "config.json")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := server.LoadConfig(path)
		if err != nil {
			msg := err.Error()
			where := regexp.MustCompile(`^config ` + regexp.QuoteMeta(path) + `(:\d+:\d+)?: `).FindString(msg)
			if where == "" {
				t.Fatalf("error does not name the file: %v", err)
			}
			msg = "config " + path + ": " + strings.TrimPrefix(msg, where)
			var syntax *json.SyntaxError
			notJSON := errors.As(err, &syntax) || strings.HasSuffix(msg, ": EOF") || errors.Is(err, io.ErrUnexpectedEOF)
			documentType := strings.Contains(msg, "must hold one JSON object") || strings.Contains(msg, "data after the configuration object")
			if !notJSON && !documentType && !fieldNamed.MatchString(strings.TrimPrefix(msg, "config "+path+": ")) {
				t.Fatalf("error names no field: %v", err)
			}
			return
		}
		if c == nil {
			t.Fatal("nil config without an error")
		}
		again, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("marshal accepted config: %v", err)
		}
		path2 := filepath.Join(t.TempDir(), "again.json")
		if err := os.WriteFile(path2, again, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := server.LoadConfig(path2); err != nil {
			t.Fatalf("accepted %q, but not what it read back, %s: %v", data, again, err)
		}
	})
}

// TestLoadConfigWholeDocument: a file that is not one JSON object is
// refused, naming the file: null, an array, and an object followed by more
// (a half-saved edit) are not configurations.
func TestLoadConfigWholeDocument(t *testing.T) {
	for _, doc := range []string{`null`, `[]`, `{} {"issuer":5}`, `{"issuer":"a"} x`, `"x"`} {
		t.Run(doc, func(t *testing.T) {
			is := is.New(t)
			path := filepath.Join(t.TempDir(), "config.json")
			is.NoErr(os.WriteFile(path, []byte(doc), 0o600))
			_, err := server.LoadConfig(path)
			is.True(err != nil) // refused
			if err != nil {
				is.True(strings.Contains(err.Error(), path))             // names the file
				is.True(!strings.Contains(err.Error(), "field : wrong")) // and says what is wrong in words
			}
		})
	}
}
