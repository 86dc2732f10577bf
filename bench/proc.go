package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"
)

// clockTicks is the unit of utime and stime in /proc/<pid>/stat: USER_HZ,
// which Linux fixes at 100 on every architecture it exposes to user space.
const clockTicks = 100

// sample is a process's resource use at one moment.
type sample struct {
	at     time.Time
	cpu    float64 // user and system CPU seconds since the process started
	rssKiB int64
}

// cpuSeconds reads utime and stime (fields 14 and 15) from the contents of
// /proc/<pid>/stat. The command name (field 2) is in parentheses and may
// hold spaces and parentheses itself, so fields are counted from the last
// closing parenthesis.
func cpuSeconds(stat []byte) (float64, error) {
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, fmt.Errorf("no command name in %q", stat)
	}
	fields := bytes.Fields(stat[end+1:]) // from field 3, the state
	if len(fields) < 13 {
		return 0, fmt.Errorf("%d fields after the command name, want at least 13", len(fields))
	}
	var ticks uint64
	for _, f := range fields[11:13] { // utime, stime
		n, err := strconv.ParseUint(string(f), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("utime or stime %q: %w", f, err)
		}
		ticks += n
	}
	return float64(ticks) / clockTicks, nil
}

// rssKiB reads VmRSS from the contents of /proc/<pid>/status.
func rssKiB(status []byte) (int64, error) {
	for line := range bytes.SplitSeq(status, []byte("\n")) {
		rest, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("VmRSS line %q, want a number of kB", line)
		}
		return strconv.ParseInt(string(f[0]), 10, 64)
	}
	return 0, fmt.Errorf("no VmRSS line")
}

// readSample reads a process's CPU time and RSS now.
func readSample(pid int) (sample, error) {
	at := time.Now()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return sample{}, err
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return sample{}, err
	}
	cpu, err := cpuSeconds(stat)
	if err != nil {
		return sample{}, err
	}
	rss, err := rssKiB(status)
	if err != nil {
		return sample{}, err
	}
	return sample{at: at, cpu: cpu, rssKiB: rss}, nil
}

// samplingInterval is how often a server is sampled: the load window's
// ends fall between two samples, and CPU is interpolated between them.
const samplingInterval = 100 * time.Millisecond

// sampler samples a process every samplingInterval until stopped.
type sampler struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	pid    int
	series []sample // the sampling goroutine's until stop returns
	failed error    // the last read that failed, if any, likewise
}

func startSampler(ctx context.Context, pid int) *sampler {
	ctx, cancel := context.WithCancel(ctx)
	s := &sampler{cancel: cancel, pid: pid}
	s.wg.Go(func() {
		t := time.NewTicker(samplingInterval)
		defer t.Stop()
		for {
			smp, err := readSample(pid)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				return // the process has gone: keep what was read
			case err != nil:
				s.failed = err // kept for the report; the next tick tries again
			default:
				s.series = append(s.series, smp)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
	return s
}

// stop ends the sampling and returns the samples, oldest first, with a
// last one taken now: a load generator that ends right at the end of its
// window would otherwise leave it up to a tick past the last sample.
func (s *sampler) stop() []sample {
	s.cancel()
	s.wg.Wait()
	if smp, err := readSample(s.pid); err == nil {
		s.series = append(s.series, smp)
	}
	return s.series
}

// cpuAt is the process's CPU seconds at t, interpolated linearly between
// the samples either side; ok is false when t is outside the series.
func cpuAt(series []sample, t time.Time) (float64, bool) {
	i := sort.Search(len(series), func(i int) bool { return !series[i].at.Before(t) })
	switch {
	case i == len(series) || (i == 0 && series[0].at.After(t)):
		return 0, false
	case series[i].at.Equal(t):
		return series[i].cpu, true
	}
	a, b := series[i-1], series[i]
	frac := float64(t.Sub(a.at)) / float64(b.at.Sub(a.at))
	return a.cpu + frac*(b.cpu-a.cpu), true
}

// describeSeries says what a series covers, for an error about it.
func describeSeries(series []sample) string {
	if len(series) == 0 {
		return "no samples"
	}
	return fmt.Sprintf("%d samples from %s to %s", len(series),
		series[0].at.Format(time.StampMilli), series[len(series)-1].at.Format(time.StampMilli))
}

// rssBefore is the RSS of the last sample taken at or before t; ok is false
// when there is none.
func rssBefore(series []sample, t time.Time) (int64, bool) {
	i := sort.Search(len(series), func(i int) bool { return series[i].at.After(t) })
	if i == 0 {
		return 0, false
	}
	return series[i-1].rssKiB, true
}
