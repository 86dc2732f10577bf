package wire

import (
	"encoding/json"
	"testing"
)

var frames = []string{
	`{"type":"message","id":"06h069hd0yp8hfkscesf7cc3km","room":"06h069h9dprcrycybmv79zecg0","seq":3,"client_id":"m3","user":{"id":"06h069gdreccyve9zmnxqds144","username":"alice"},"body":"msg 3","ts":"2026-11-22T12:06:03.271394000Z"}`,
	`{"type":"ack","room":"r","client_id":"c-1","id":"x","seq":12,"ts":"2026-11-22T12:06:03Z"}`,
	`{"type":"joined","room":"r","last_seq":0}`,
	`{"type":"error","code":"rate_limited","message":"slow down","ref":"c-9"}`,
	`{"type":"error","code":"rate_limited","message":"slow down","ref":"join","retry_after":0.35}`,
	`{"retry_after":2}`, `{"retry_after":1e-3}`, `{"retry_after":-0.5E+1}`, `{"retry_after":null}`, `{"retry_after":"1"}`,
	`{"retry_after":1e400}`, `{"Retry_After":1}`,
	`{"type":"typing","room":"r","user":{"id":"u","username":"bob"}}`,
	`{"type":"presence","room":"r","user":{"id":"u","username":"bob"},"status":"online"}`,
	`{"type":"message","body":"quote \" and \\ and \u00e9 and [{,}]","seq":5,"client_id":"é"}`,
	` { "type" : "ack" , "seq" : -1 } `,
	`{"Type":"ack","SEQ":2}`,
	`{"seq":1.5}`, `{"seq":null}`, `{"type":null}`, `{}`, `[]`, `{"type":"a"`, `"x"`, `{"type":"a"} x`,
	`{"nested":{"a":[1,{"b":"}"}]},"type":"t","x":true,"y":null,"z":-1.5e3}`,
}

// The direct path gives what encoding/json gives, error or not.
func FuzzDecodeInMatchesEncodingJSON(f *testing.F) {
	for _, s := range frames {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var want In
		wantErr := json.Unmarshal(raw, &want)
		got, err := DecodeIn(raw)
		if (err != nil) != (wantErr != nil) || (err == nil && got != want) {
			t.Fatalf("DecodeIn(%q) = %+v, %v; encoding/json gives %+v, %v", raw, got, err, want, wantErr)
		}
	})
}

func BenchmarkDecodeIn(b *testing.B) {
	raw := []byte(frames[0])
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeIn(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// The same frame through encoding/json alone, for comparison.
func BenchmarkDecodeInWithEncodingJSON(b *testing.B) {
	raw := []byte(frames[0])
	b.ReportAllocs()
	for b.Loop() {
		var f In
		if err := json.Unmarshal(raw, &f); err != nil {
			b.Fatal(err)
		}
	}
}

// A rate_limited error's retry_after, fractional, is read on the direct
// path, not handed to encoding/json.
func TestRetryAfterTakesTheDirectPath(t *testing.T) {
	f, ok := scanIn([]byte(`{"type":"error","code":"rate_limited","message":"slow down","ref":"join","retry_after":0.35}`))
	if !ok || f.RetryAfter != 0.35 || f.Ref != "join" {
		t.Fatalf("got %+v, %v; want retry_after 0.35 on the direct path", f, ok)
	}
}
