package driver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/parleychat/parley/loadtest/schedule"
)

// annotator marks the run's stages on Grafana's graphs, so that a
// dashboard shows where the load changed next to what the servers did.
// A nil annotator does nothing.
type annotator struct {
	url, token, runID string
	http              *http.Client
	progress          func(string, ...any)
}

func newAnnotator(grafana, token, runID string, progress func(string, ...any)) *annotator {
	if grafana == "" {
		return nil
	}
	return &annotator{
		url: strings.TrimSuffix(grafana, "/") + "/api/annotations", token: token, runID: runID,
		http: &http.Client{Timeout: 10 * time.Second}, progress: progress,
	}
}

// annotate posts an annotation for a stage that begins now. A failure is
// reported and otherwise ignored: annotations are not worth a run.
func (a *annotator) annotate(ctx context.Context, name string, s schedule.Stage) {
	if a == nil {
		return
	}
	body, _ := json.Marshal(map[string]any{
		"time": time.Now().UnixMilli(),
		"tags": []string{"parley-loadtest", "run:" + a.runID, "stage:" + name},
		"text": fmt.Sprintf("load test %s: stage %s (%s, %v)", a.runID, name, shapeOf(s), s.Duration),
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.url, bytes.NewReader(body))
	if err != nil {
		a.progress("grafana annotation: %v", err)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		a.progress("grafana annotation: %v", err)
		return
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		a.progress("grafana annotation: %s", resp.Status)
	}
}

// shapeOf describes a stage's rate briefly.
func shapeOf(s schedule.Stage) string {
	switch s.Shape {
	case schedule.Ramp:
		return fmt.Sprintf("ramp %v→%v/s", s.From, s.To)
	case schedule.Steps:
		return fmt.Sprintf("steps %v→%v/s", s.From, s.To)
	case schedule.Spike:
		return fmt.Sprintf("%v/s, spike to %v/s", s.Rate, s.Peak)
	default:
		return fmt.Sprintf("%v/s", s.Rate)
	}
}
