package pgstore

// InstancesTTL lets the tests lengthen how long instances are cached, so
// that only a notification can end it.
var InstancesTTL = &instancesTTL
