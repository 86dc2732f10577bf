package check

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// setFault switches the check's fault on or off at every replica, through
// the admin API.
func (k *checker) setFault(ctx context.Context, on bool) error {
	method, body := http.MethodDelete, ""
	if on {
		method, body = http.MethodPut, `{"rate":1}`
	}
	var errs []error
	for _, admin := range k.Admins { // every replica, whatever the others answer
		req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(admin, "/")+"/admin/faults/"+k.Fault, strings.NewReader(body))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		req.Header.Set("Authorization", "Bearer "+k.AdminToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := k.http.Do(req)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			errs = append(errs, fmt.Errorf("%s %s: %s", method, admin, resp.Status))
		}
	}
	return errors.Join(errs...)
}
