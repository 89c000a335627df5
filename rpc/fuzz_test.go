package rpc

import (
	"context"
	"encoding/json"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/benbjohnson/clock"
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

// FuzzHTTP sends arbitrary methods, paths, content types and bodies to
// the HTTP front: it must answer every one with a 2xx or 4xx (never a 5xx:
// the store is up), a JSON error body for API errors, and 415 only for a
// content type it does not read as JSON. A PUT it answers 200 stored
// exactly the text the body's JSON denotes: the body is UTF-8, the value
// reads back as encoding/json decodes it, and no U+FFFD was put in for
// what it could not decode.
func FuzzHTTP(f *testing.F) {
	f.Add("PUT", "/v1/keys/a%2Fb", "application/json", `{"value":"v","ttl_seconds":5}`)
	f.Add("GET", "/v1/keys/%ff", "", "")
	f.Add("DELETE", "/v1/keys/", "", "")
	f.Add("PUT", "/v1/keys/k", "", `{"value":1}`)
	f.Add("POST", "/v1/keys/k?x=1", "application/json", `{"value":"v"}`)
	a := actor.New(actor.Config{ExpireInterval: -1})
	defer a.Stop()
	// A clock that stands still: no TTL ends between a PUT and its check.
	svc := NewService(a, Options{MaxKeyBytes: 64, MaxValueBytes: 256, Clock: clock.NewMock()})
	h := NewHTTPHandler(svc, HTTPOptions{})
	f.Fuzz(func(t *testing.T, method, path, contentType, body string) {
		req, err := http.NewRequest(method, "http://kvstore"+path, strings.NewReader(body))
		if err != nil || !strings.HasPrefix(req.URL.Path, "/") {
			return // not a request a client could send
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
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
		// A body is read as JSON under these content types (README, HTTP).
		if rec.Code == http.StatusUnsupportedMediaType {
			if mt, _, err := mime.ParseMediaType(contentType); contentType == "" ||
				err == nil && (mt == "application/json" || mt == "application/x-www-form-urlencoded") {
				t.Fatalf("%s %q: 415 for content type %q", method, path, contentType)
			}
		}
		if method != http.MethodPut || rec.Code != http.StatusOK {
			return
		}
		if !utf8.ValidString(body) {
			t.Fatalf("PUT %q with a body that is not UTF-8 stored it: %q", path, body)
		}
		key, err := url.PathUnescape(strings.TrimPrefix(req.URL.EscapedPath(), keysPrefix))
		if err != nil {
			t.Fatalf("PUT %q stored a key that does not unescape: %v", path, err)
		}
		got, err := svc.Get(context.Background(), &kvstorepb.GetRequest{Key: key})
		if err != nil || !got.GetFound() {
			t.Fatalf("PUT %q answered 200 but Get(%q) = %v, %v", path, key, got, err)
		}
		var sent struct{ Value string }
		if err := json.Unmarshal([]byte(body), &sent); err != nil || got.GetValue() != sent.Value {
			t.Fatalf("PUT %q %q stored %q; encoding/json reads %q (%v)", path, body, got.GetValue(), sent.Value, err)
		}
		// U+FFFD in the value must have been sent as such, as text or as
		// an escape (or as the escape of an escape: an over-count, which
		// only makes this check weaker).
		replaced := strings.Count(got.GetValue(), "\uFFFD")
		if sent := strings.Count(body, "\uFFFD") + strings.Count(strings.ToLower(body), `\ufffd`); replaced > sent {
			t.Fatalf("PUT %q %q stored %q: %d U+FFFD, %d sent", path, body, got.GetValue(), replaced, sent)
		}
	})
}
