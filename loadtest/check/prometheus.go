package check

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// errEmpty is a query's answer with no sample: for the replica count it
// means Prometheus does not see the deployment, which is not zero replicas.
var errEmpty = errors.New("the query returned no sample")

// promScalar evaluates query at Prometheus and returns the first sample's
// value, or errEmpty when the answer is empty.
func (k *checker) promScalar(ctx context.Context, query string) (float64, error) {
	var body struct {
		Status string
		Error  string
		Data   struct {
			Result []struct {
				Value [2]any `json:"value"`
			}
		}
	}
	if err := k.getJSON(ctx, strings.TrimSuffix(k.Prometheus, "/")+"/api/v1/query?"+url.Values{"query": {query}}.Encode(), &body); err != nil {
		return 0, err
	}
	if body.Status != "success" {
		return 0, fmt.Errorf("query %s: %s", query, body.Error)
	}
	if len(body.Data.Result) == 0 {
		return 0, errEmpty
	}
	s, _ := body.Data.Result[0].Value[1].(string)
	return strconv.ParseFloat(s, 64)
}
