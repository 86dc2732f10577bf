package driver

import (
	"regexp"
	"strings"
	"testing"
)

func TestTraceparentIsW3C(t *testing.T) {
	t.Parallel()
	valid := regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$`)
	for _, sampled := range []bool{true, false} {
		tp := traceparent(sampled)
		if !valid.MatchString(tp) || strings.HasSuffix(tp, "-01") != sampled {
			t.Errorf("traceparent(%v) = %q, want a W3C traceparent with the sampled flag %v", sampled, tp, sampled)
		}
	}
	if a, b := traceparent(true), traceparent(true); a == b {
		t.Errorf("two traces share an id: %s", a)
	}
}
