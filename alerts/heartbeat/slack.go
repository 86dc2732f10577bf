package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// slackClient posts to a Slack incoming webhook, read from file at each
// post (a mounted Secret may change under it) or given as url.
type slackClient struct {
	file, url string
	client    *http.Client
}

func (s *slackClient) post(ctx context.Context, p slackPost) error {
	hook, err := webhookURL(s.file, s.url)
	if err != nil {
		return err
	}
	body, err := json.Marshal(p)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		// The URL is a secret: say where, not what.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("posting to the Slack webhook: %w", err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		// Slack names the problem in the body: no_service, invalid_payload...
		return fmt.Errorf("the Slack webhook answered %s: %s", resp.Status, strings.TrimSpace(string(answer)))
	}
	return nil
}

// webhookURL is the webhook from file (trimmed of the newline a secret
// file usually ends with) or else raw, checked to be an http(s) URL.
func webhookURL(file, raw string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", err
		}
		raw = strings.TrimSpace(string(b))
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errors.New("not an http(s) URL")
	}
	return raw, nil
}
