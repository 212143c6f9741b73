package licensing

import "context"

// Unexported names the external tests of this package use.
var (
	ErrCrossOrigin     = errCrossOrigin
	SignatureHeader    = signatureHeader
	ErrKeyLength       = errKeyLength
	ErrKeyNotHex       = errKeyNotHex
	ErrKeyChecksum     = errKeyChecksum
	KeyLength          = keyLength
	ErrShortPepper     = errShortPepper
	OrganizationHeader = organizationHeader
	NewHMACHasher      = newHMACHasher
)

// PruneEventsNow runs the event log's pruner once, as its background loop does.
func (s *Service) PruneEventsNow(ctx context.Context) (int, error) { return s.pruneEvents(ctx) }

// RemindExpiringNow runs the expiry reminders' scan once, as its background loop does.
func (s *Service) RemindExpiringNow(ctx context.Context) (int, error) { return s.remindExpiring(ctx) }

// RememberRemindersAtMost bounds the ids of the reminders the Service
// remembers (100,000 otherwise), so that a test can fill it.
func (s *Service) RememberRemindersAtMost(n int) {
	s.reminded.mu.Lock()
	s.reminded.max = n
	s.reminded.mu.Unlock()
}
