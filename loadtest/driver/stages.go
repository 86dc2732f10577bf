package driver

import (
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/parleychat/parley/loadtest/report"
	"github.com/parleychat/parley/loadtest/wait"
)

// scheduleStages marks each stage's start, the load having begun at
// begin, and starts one goroutine (which the crowd waits for) that, as
// each stage begins, says so, annotates Grafana when asked to, and for a
// stage with reconnect drops that share of the users' connections.
func (r *run) scheduleStages(c *crowd, begin time.Time) []report.StageMark {
	stages := r.sc.Stages
	var marks []report.StageMark
	var starts []time.Duration
	at := time.Duration(0)
	for i, s := range stages {
		name := s.Name
		if name == "" {
			name = "stage " + strconv.Itoa(i+1)
		}
		marks = append(marks, report.StageMark{Name: name, Offset: begin.Sub(r.started) + at})
		starts = append(starts, at)
		at += s.Duration
	}
	grafana := newAnnotator(r.cfg.Grafana, r.cfg.GrafanaToken, r.cfg.RunID, r.progress)
	c.wg.Go(func() {
		for i, s := range stages {
			if wait.Sleep(c.ctx, time.Until(begin.Add(starts[i]))) != nil {
				return
			}
			r.progress("stage %s begins", marks[i].Name)
			grafana.annotate(c.ctx, marks[i].Name, s)
			if s.Reconnect > 0 {
				n := int(float64(len(r.active)) * s.Reconnect)
				r.progress("%s: dropping %d connections", marks[i].Name, n)
				for _, j := range rand.Perm(len(r.active))[:n] {
					r.active[j].dropConnection()
				}
			}
		}
	})
	return marks
}
