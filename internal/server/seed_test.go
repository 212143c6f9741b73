package server_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/matryer/is"
)

// TestSeedClients runs the curl, JavaScript and PHP snippets of the original
// create-key document against the real server. A missing interpreter skips
// its case, except in CI (CI set), where it fails.
func TestSeedClients(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.json")
	writeConfig(t, cfgPath, "business")
	p := start(t, nil, "-config", cfgPath, "-data", filepath.Join(dir, "data"))
	keyFormat := regexp.MustCompile(`^[0-9a-f]{64}$`)
	idFormat := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	timeFormat := regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00$`)

	tests := []struct {
		name, tool string
		args       []string
		types      map[string]string // JSON field -> the client's own type name
	}{
		{"curl", "curl", []string{"sh", "testdata/seed/create.sh"}, nil},
		{"curl -d without a content type", "curl", []string{"sh", "testdata/seed/create-form-type.sh"}, nil},
		{"javascript", "node", []string{"node", "testdata/seed/create.mjs"},
			map[string]string{"id": "string", "licenseKey": "string", "instanceName": "string", "active": "boolean", "createdAt": "string", "expiresAt": "null", "maxInstances": "null"}},
		{"php", "php", []string{"php", "testdata/seed/create.php"},
			map[string]string{"id": "string", "licenseKey": "string", "instanceName": "string", "active": "boolean", "createdAt": "string", "expiresAt": "NULL", "maxInstances": "NULL"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			needTool(t, tc.tool, map[string]string{"curl": "curl", "node": "nodejs", "php": "php-cli"}[tc.tool])
			cmd := exec.Command(tc.args[0], tc.args[1:]...)
			cmd.Env = append(os.Environ(), "BASE_URL="+p.url, "TOKEN=token-owner-1")
			out, err := cmd.Output()
			is.NoErr(err)
			var status int
			var data map[string]any
			var types map[string]string
			if tc.tool == "curl" { // both curl cases
				lines := strings.Split(strings.TrimSpace(string(out)), "\n")
				status, _ = strconv.Atoi(lines[len(lines)-1])
				is.NoErr(json.Unmarshal([]byte(strings.Join(lines[:len(lines)-1], "\n")), &data))
			} else {
				var res struct {
					Status int               `json:"status"`
					Data   map[string]any    `json:"data"`
					Types  map[string]string `json:"types"`
				}
				is.NoErr(json.Unmarshal(out, &res))
				status, data, types = res.Status, res.Data, res.Types
				is.Equal(types, tc.types) // the client sees the documented types
			}
			is.Equal(status, 201)
			var fields []string
			for k := range data {
				fields = append(fields, k)
			}
			sort.Strings(fields)
			// exactly the documented fields: the seed contract's, and expiresAt (null: never) and maxInstances (null: none), which they ignore
			is.Equal(fields, []string{"active", "createdAt", "expiresAt", "id", "instanceName", "licenseKey", "maxInstances"})
			is.True(idFormat.MatchString(data["id"].(string)))
			is.True(keyFormat.MatchString(data["licenseKey"].(string)))
			is.Equal(data["instanceName"], "Production Server")
			is.Equal(data["active"], true)
			is.True(timeFormat.MatchString(data["createdAt"].(string)))
			status, _, _ = p.do(t, "POST", "/api/v1/licensing/validate", "", `{"licenseKey":"`+data["licenseKey"].(string)+`"}`)
			is.Equal(status, 200) // the key the client saved works
		})
	}
}
