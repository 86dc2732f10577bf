package testenv

import (
	"fmt"
	"runtime"
	"testing"
)

// recorder stands in for a test to watch how it ends. Embedding testing.TB
// satisfies the interface's unexported method; only what testenv calls is
// overridden.
type recorder struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (r *recorder) Helper() {}

func (r *recorder) Skipf(format string, args ...any) {
	r.skipped, r.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failed, r.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run calls get on its own goroutine, as Skip and Fatal end the goroutine
// that calls them.
func run(get func(testing.TB) string) *recorder {
	rec := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		get(rec)
	}()
	<-done
	return rec
}

// env is a getenv that reads the given name, value pairs and nothing else.
func env(pairs ...string) func(string) string {
	m := make(map[string]string)
	for i := 0; i+1 < len(pairs); i += 2 {
		m[pairs[i]] = pairs[i+1]
	}
	return func(name string) string { return m[name] }
}
