package driver

import (
	"testing"
	"time"

	"github.com/parleychat/parley/loadtest/ledger"
)

func TestFindKnee(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	point := func(sec int, sent int64, p99 time.Duration, errors int64) ledger.Point {
		return ledger.Point{Offset: time.Duration(sec) * time.Second, Sent: sent, DeliveryP99: p99, Errors: errors}
	}
	tests := []struct {
		name     string
		timeline []ledger.Point
		want     float64 // 0: no knee
	}{
		{"never breaks", []ledger.Point{point(0, 100, 10*ms, 0), point(1, 200, 20*ms, 0)}, 0},
		{"breaks for good at 300/s", []ledger.Point{
			point(0, 100, 10*ms, 0), point(1, 200, 20*ms, 0), point(2, 300, 90*ms, 0),
			point(3, 400, 300*ms, 0), point(4, 500, 900*ms, 0), point(5, 600, 2000*ms, 0)}, 300},
		{"a blip is not the knee", []ledger.Point{
			point(0, 100, 10*ms, 0), point(1, 200, 400*ms, 0), point(2, 300, 20*ms, 0),
			point(3, 400, 30*ms, 0), point(4, 500, 300*ms, 0), point(5, 600, 300*ms, 0), point(6, 700, 300*ms, 0)}, 400},
		{"failures count as broken", []ledger.Point{
			point(0, 100, 10*ms, 0), point(1, 200, 10*ms, 3), point(2, 300, 10*ms, 5), point(3, 400, 10*ms, 9)}, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			k := findKnee(tt.timeline, time.Second, 250*ms)
			switch {
			case tt.want == 0 && k != nil:
				t.Fatalf("got a knee at %v/s, want none", k.Rate)
			case tt.want != 0 && (k == nil || k.Rate != tt.want):
				t.Fatalf("got %+v, want a knee at %v/s", k, tt.want)
			}
		})
	}
}
