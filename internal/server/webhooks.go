package server

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/internal/webhook"
)

// cursorsFile is where, in the data directory, the file store's server
// keeps each webhook endpoint's delivery cursor.
const cursorsFile = "webhook-cursors.json"

// webhookConfig checks the webhooks and webhookDelivery of c and returns
// the deliverer's configuration without its log and cursors. Its errors
// name the field and the fix, and never hold a secret.
func (c *FileConfig) webhookConfig() (webhook.Config, error) {
	var wc webhook.Config
	if len(c.Webhooks) > webhook.MaxEndpoints {
		return wc, fmt.Errorf("webhooks: %d endpoints: at most %d", len(c.Webhooks), webhook.MaxEndpoints)
	}
	seen := map[string]int{}
	for i, w := range c.Webhooks {
		field := func(name string) string { return fmt.Sprintf("webhooks[%d].%s", i, name) }
		u, err := url.Parse(w.URL)
		switch {
		case w.URL == "":
			return wc, fmt.Errorf("%s: required: the receiver's http or https URL", field("url"))
		case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil:
			return wc, fmt.Errorf("%s: want an absolute http or https URL without a user name, such as https://crm.example.com/hooks/licensing", field("url"))
		}
		if j, ok := seen[w.URL]; ok {
			return wc, fmt.Errorf("%s: the same URL as webhooks[%d]: list each endpoint once, with every event type it wants", field("url"), j)
		}
		seen[w.URL] = i
		key, err := webhook.ParseSecret(w.Secret)
		if err != nil {
			return wc, fmt.Errorf("%s: %w", field("secret"), err)
		}
		ep := webhook.Endpoint{URL: w.URL, Secret: key}
		for j, t := range w.Events {
			if !webhook.KnownEventType(licensing.EventType(t)) {
				names := make([]string, len(webhook.EventTypes))
				for k, e := range webhook.EventTypes {
					names[k] = string(e)
				}
				return wc, fmt.Errorf("%s: %q is not a type of the event log's events: want one of %s, or leave events out for every type", field(fmt.Sprintf("events[%d]", j)), t, strings.Join(names, ", "))
			}
			ep.Events = append(ep.Events, licensing.EventType(t))
		}
		wc.Endpoints = append(wc.Endpoints, ep)
	}
	d := c.WebhookDelivery
	for _, f := range []struct {
		name string
		s    string
		to   *time.Duration
	}{{"timeout", d.Timeout, &wc.Timeout}, {"firstRetry", d.FirstRetry, &wc.FirstRetry}, {"maxRetryWait", d.MaxRetryWait, &wc.MaxRetryWait},
		{"maxRetryTime", d.MaxRetryTime, &wc.MaxRetryTime}, {"pollInterval", d.PollInterval, &wc.PollInterval}} {
		if f.s == "" {
			continue
		}
		v, err := time.ParseDuration(f.s)
		if err != nil || v <= 0 {
			return wc, fmt.Errorf("webhookDelivery.%s: %q is not a positive Go duration such as \"10s\" or \"5m\"", f.name, f.s)
		}
		*f.to = v
	}
	if d.MaxAttempts < 0 {
		return wc, errors.New("webhookDelivery.maxAttempts: must be 1 or more (absent: 10)")
	}
	wc.MaxAttempts = d.MaxAttempts
	return wc, nil
}

// startWebhooks starts delivering the store's events to the configured
// endpoints, on goroutines of their own that read the store's event log
// and write the delivery cursors only. The cursors are the store's when
// it keeps them (PostgreSQL), else in <data>/webhook-cursors.json (the
// file store, which one process holds) or in memory (the memory store).
// stopWebhooks ends them.
func (m *Main) startWebhooks(cfg *FileConfig) error {
	if len(cfg.Webhooks) == 0 {
		return nil
	}
	wc, err := cfg.webhookConfig()
	if err != nil {
		return err
	}
	log, ok := m.store.(licensing.EventLog)
	if !ok {
		return fmt.Errorf("config webhooks: the %s store keeps no event log to deliver from: use -store file (or another store that keeps one), or remove webhooks from the configuration", m.StoreKind)
	}
	switch c, ok := m.store.(webhook.Cursors); {
	case ok:
		wc.Cursors = c
	case m.StoreKind == "memory":
		wc.Cursors = webhook.NewMemoryCursors()
	case m.StoreKind == "file":
		if wc.Cursors, err = webhook.OpenFileCursors(filepath.Join(m.DataDir, cursorsFile)); err != nil {
			return err
		}
	default: // a store that several servers share needs leases they all see
		return fmt.Errorf("config webhooks: the %s store keeps no webhook delivery cursors: update it, or remove webhooks from the configuration", m.StoreKind)
	}
	wc.Log, wc.Logger = log, m.logger
	d, err := webhook.New(wc)
	if err != nil {
		return err
	}
	m.metrics.webhooks = d
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.Run(ctx)
	}()
	m.stopWebhooks = func() {
		cancel()
		<-done
	}
	m.logger.Info("webhooks", "endpoints", len(wc.Endpoints))
	return nil
}
