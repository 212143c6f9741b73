package client

import "errors"

// ReasonSeatLimit: the server answered 403 "License key is already used by
// the maximum number of instances (N)" (ErrSeatLimit): the key is limited
// to N instances, each seen within the server's instance lease (72 hours
// by default) holds a seat, and this instance is not one of them.
// Remembered offline, as the server's other refusals are.
const ReasonSeatLimit Reason = "seat_limit"

// ErrSeatLimit: every seat of the license key is held by other instances.
// The instance is counted under Config.InstanceID, else its InstanceURL,
// so keep InstanceID stable across restarts (a new one on every start
// takes a new seat). License.ServerMessage names the limit.
var ErrSeatLimit = errors.New("client: the license key is used by its maximum number of instances; " +
	"ask the vendor to free a seat (its owner page lists the key's instances) or to raise the key's limit, " +
	"or stop another instance that uses this key")
