package licensing_test

import (
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/internal/wire"
)

func TestKeySharedByInstances(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, nil)
	_, key := e.create(t, "t-owner", "prod")
	is.Equal(e.do(t, "POST", validatePath, "", validateBody(key, `"instanceId":"inst-a"`)).status, 200)
	is.Equal(e.do(t, "POST", validatePath, "", validateBody(key, `"instanceId":"inst-a"`)).status, 200)
	is.Equal(len(e.eventsOf(licensing.EventKeyShared)), 0) // one instance is not sharing
	r := e.do(t, "POST", validatePath, "", validateBody(key, `"instanceId":"inst-b"`))
	is.Equal(r.status, 200) // sharing does not fail validation
	shared := e.eventsOf(licensing.EventKeyShared)
	is.Equal(len(shared), 1)
	is.Equal(shared[0].InstanceCount, 2)
	is.Equal(shared[0].MaskedKey, wire.MaskKey(key))
	list := e.do(t, "GET", keysPath, "t-owner", "").body["keys"].([]any)[0].(map[string]any)
	is.Equal(list["lastViolations"], []any{"This license key is shared by 2 instances within one day."})

	e.clock.Add(25 * time.Hour) // inst-a falls out of the window
	e.do(t, "POST", validatePath, "", validateBody(key, `"instanceId":"inst-b"`))
	list = e.do(t, "GET", keysPath, "t-owner", "").body["keys"].([]any)[0].(map[string]any)
	is.Equal(list["lastViolations"], []any{})
}
