package rpc

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"kvstore/actor"
	kvstorepb "kvstore/proto"
)

// FuzzValidation feeds arbitrary requests through the one validation path
// both fronts share: every Set either succeeds and reads back exactly, or
// fails with InvalidArgument; nothing panics.
func FuzzValidation(f *testing.F) {
	f.Add("k", "v", int64(0))
	f.Add("", "v", int64(1))
	f.Add(strings.Repeat("k", 65), "v", int64(-1))
	f.Add("k", strings.Repeat("v", 300), int64(1<<62))
	f.Add("\xff\x00", "\x00", int64(9223372036))
	a := actor.New(actor.Config{ExpireInterval: -1})
	defer a.Stop()
	svc := NewService(a, Options{MaxKeyBytes: 64, MaxValueBytes: 256})
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, key, value string, ttl int64) {
		_, err := svc.Set(ctx, &kvstorepb.SetRequest{Key: key, Value: value, TtlSeconds: ttl})
		if err != nil {
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("Set(%q, %d bytes, ttl %d) = %v; want OK or InvalidArgument", key, len(value), ttl, err)
			}
			return
		}
		get, err := svc.Get(ctx, &kvstorepb.GetRequest{Key: key})
		if err != nil || !get.GetFound() || get.GetValue() != value {
			t.Fatalf("Get(%q) after Set = %v, %v", key, get, err)
		}
	})
}

// FuzzHTTP sends arbitrary methods, paths and bodies to the HTTP front: it
// must answer every one with a 2xx or 4xx (never a 5xx: the store is up),
// and a JSON error body for API errors.
func FuzzHTTP(f *testing.F) {
	f.Add("PUT", "/v1/keys/a%2Fb", `{"value":"v","ttl_seconds":5}`)
	f.Add("GET", "/v1/keys/%ff", "")
	f.Add("DELETE", "/v1/keys/", "")
	f.Add("PUT", "/v1/keys/k", `{"value":1}`)
	f.Add("POST", "/v1/keys/k?x=1", `{"value":"v"}`)
	a := actor.New(actor.Config{ExpireInterval: -1})
	defer a.Stop()
	h := NewHTTPHandler(NewService(a, Options{MaxKeyBytes: 64, MaxValueBytes: 256}), HTTPOptions{})
	f.Fuzz(func(t *testing.T, method, path, body string) {
		req, err := http.NewRequest(method, "http://kvstore"+path, strings.NewReader(body))
		if err != nil || !strings.HasPrefix(req.URL.Path, "/") {
			return // not a request a client could send
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %q: %d %s", method, path, rec.Code, rec.Body.String())
		}
		// A missing key is 404 {"found":false} by design (README, HTTP);
		// every other 4xx under /v1/ carries a JSON error.
		missing := rec.Code == http.StatusNotFound && rec.Body.String() == "{\"found\":false}\n"
		if rec.Code >= 400 && !missing && strings.HasPrefix(req.URL.EscapedPath(), "/v1/") && !strings.Contains(rec.Body.String(), `"code"`) {
			t.Fatalf("%s %q: %d without a JSON error: %q", method, path, rec.Code, rec.Body.String())
		}
	})
}
