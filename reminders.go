package licensing

import (
	"context"
	"time"
)

// Expiry reminders: with an EventLog, the Service appends EventKeyExpiring
// once per key and expiry, Config.ExpiryReminder before the key expires.
// A scan pages through the store's ExpiringKeys at start and every minute;
// SetKeyExpiry, RotateKey and CreateKey send the reminder at once when the
// key's new expiry is already inside the window. The event's id is derived
// from the key's id and its expiry, so every server that shares the store
// appends the same event and the log keeps one; a renewal to another
// expiry is reminded of again. A reminder this process has not sent is
// first looked for in the log (the key's newest reminder), so that a
// restart or a second server does not tell it (OnEvent) again.

// expiringEvent returns k's reminder, as every server makes it.
func (s *Service) expiringEvent(k Key) Event {
	return Event{ID: derivedEventID(EventKeyExpiring, k.ID, k.ExpiresAt.UTC().Format(time.RFC3339Nano)),
		Type: EventKeyExpiring, Time: s.now(), KeyID: k.ID, OrganizationID: k.OrganizationID,
		MaskedKey: k.MaskedKey, ExpiresAt: k.ExpiresAt}
}

// lastUUID sorts after every key id: ExpiringKeys from (t, lastUUID)
// starts after every key that expires at t.
const lastUUID = "ffffffff-ffff-ffff-ffff-ffffffffffff"

// remindersOn reports whether the Service sends expiry reminders.
func (s *Service) remindersOn() bool { return s.elog != nil && s.cfg.ExpiryReminder > 0 }

// remindIfDue sends k's reminder now when k is active and expires inside
// the window (after now, at most Config.ExpiryReminder from now).
func (s *Service) remindIfDue(ctx context.Context, k Key) {
	now := s.now()
	if !s.remindersOn() || !k.Active || k.ExpiresAt.IsZero() || !k.ExpiresAt.After(now) ||
		k.ExpiresAt.After(now.Add(s.cfg.ExpiryReminder)) {
		return
	}
	e := s.expiringEvent(k)
	if !s.reminded.first(e.ID) || s.remindedBefore(ctx, e) {
		return
	}
	s.logNow(ctx, e)
	s.tell(ctx, e)
}

// remindedBefore reports whether the log holds e, a reminder this process
// has not sent (it restarted, or another server sent it), looking at the
// key's newest reminder: so that e is not told (OnEvent) again. A failed
// look is a no (the log keeps e once anyway).
func (s *Service) remindedBefore(ctx context.Context, e Event) bool {
	got, err := s.elog.Events(ctx, e.OrganizationID, EventQuery{KeyID: e.KeyID, Type: EventKeyExpiring, Limit: 1})
	return err == nil && len(got) == 1 && got[0].ID == e.ID
}

// remindExpiring sends the reminders of every key inside the window that
// this process has not sent (the log keeps the first of each whichever
// server sent it), and returns how many it sent. The first scan reads the
// whole window; each later one, the keys that entered it since the last
// complete scan (a scan that failed is made again whole from there).
func (s *Service) remindExpiring(ctx context.Context) (int, error) {
	if !s.remindersOn() {
		return 0, nil
	}
	s.remindMu.Lock()
	defer s.remindMu.Unlock()
	now := s.now()
	until := now.Add(s.cfg.ExpiryReminder)
	after, afterID := now, ""
	if s.scannedUntil.After(now) {
		// The keys up to scannedUntil were reminded of by an earlier scan,
		// or since by remindIfDue (a creation or renewal into the window):
		// only the part of the window that is new is read. Rescanning
		// the whole window relied on s.reminded, which forgets past
		// 100,000 keys, and re-sent (OnEvent) every key it forgot.
		after, afterID = s.scannedUntil, lastUUID
	}
	sent := 0
	for {
		keys, err := s.elog.ExpiringKeys(ctx, until, after, afterID, listChunk)
		if err != nil {
			s.cfg.Logger.Error("licensing: expiry reminders: list the expiring keys", "err", err)
			return sent, err
		}
		var events []Event
		for _, k := range keys {
			if e := s.expiringEvent(k); s.reminded.first(e.ID) && !s.remindedBefore(ctx, e) {
				events = append(events, e)
			}
		}
		if len(events) > 0 {
			if err := s.elog.AppendEvents(ctx, events); err != nil {
				for _, e := range events {
					s.reminded.forget(e.ID) // tried again at the next scan
				}
				s.cfg.Logger.Error("licensing: expiry reminders: append to the event log", "err", err)
				return sent, err
			}
			for _, e := range events {
				s.tell(ctx, e)
			}
			sent += len(events)
		}
		if len(keys) < listChunk {
			if until.After(s.scannedUntil) {
				s.scannedUntil = until
			}
			return sent, nil
		}
		after, afterID = keys[len(keys)-1].ExpiresAt, keys[len(keys)-1].ID
	}
}
