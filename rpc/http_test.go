package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"kvstore/actor"
	kvstorepb "kvstore/proto"
)

type httpTestServer struct {
	url    string
	client *http.Client
	clock  *clock.Mock
	svc    *Service
}

// startHTTP serves the HTTP front of a fresh actor on a loopback port and
// stops both at cleanup.
func startHTTP(tb testing.TB, opts Options, hopts HTTPOptions) *httpTestServer {
	tb.Helper()
	mock := clock.NewMock()
	mock.Set(time.Unix(1_700_000_000, 0))
	a := actor.New(actor.Config{ExpireInterval: -1})
	opts.Clock = mock
	svc := NewService(a, opts)
	srv := httptest.NewServer(NewHTTPHandler(svc, hopts))
	tb.Cleanup(func() {
		srv.Close()
		a.Stop()
	})
	return &httpTestServer{url: srv.URL, client: srv.Client(), clock: mock, svc: svc}
}

type httpResponse struct {
	status int
	header http.Header
	body   string
}

// do sends one request; path is sent as written (escaped form).
func (ts *httpTestServer) do(tb testing.TB, method, path, contentType string, body io.Reader) httpResponse {
	tb.Helper()
	req, err := http.NewRequest(method, ts.url+path, body)
	if err != nil {
		tb.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return ts.send(tb, req)
}

// send sends req and reads the whole response.
func (ts *httpTestServer) send(tb testing.TB, req *http.Request) httpResponse {
	tb.Helper()
	resp, err := ts.client.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return httpResponse{resp.StatusCode, resp.Header, string(b)}
}

func (ts *httpTestServer) put(tb testing.TB, path, body string) httpResponse {
	tb.Helper()
	return ts.do(tb, http.MethodPut, path, "application/json", strings.NewReader(body))
}

func (ts *httpTestServer) get(tb testing.TB, path string) httpResponse {
	tb.Helper()
	return ts.do(tb, http.MethodGet, path, "", nil)
}

// want fails unless r has the status and exactly the JSON body.
func (r httpResponse) want(tb testing.TB, status int, body string) {
	tb.Helper()
	if r.status != status || r.body != body+"\n" {
		tb.Fatalf("got %d %q; want %d %q", r.status, r.body, status, body+"\n")
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		tb.Fatalf("Content-Type %q; want application/json", ct)
	}
}

// wantError fails unless r is an API error with the status, code and a
// message containing msgPart.
func (r httpResponse) wantError(tb testing.TB, status int, code, msgPart string) {
	tb.Helper()
	var e struct{ Code, Message string }
	dec := json.NewDecoder(strings.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		tb.Fatalf("got %d %q: not an error object: %v", r.status, r.body, err)
	}
	if r.status != status || e.Code != code || !strings.Contains(e.Message, msgPart) {
		tb.Fatalf("got %d %s %q; want %d %s containing %q", r.status, e.Code, e.Message, status, code, msgPart)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		tb.Fatalf("Content-Type %q; want application/json", ct)
	}
}

func TestHTTPSetGetDelete(t *testing.T) {
	ts := startHTTP(t, Options{}, HTTPOptions{})
	ts.put(t, "/v1/keys/k", `{"value": "v"}`).want(t, 200, `{"success":true}`)
	ts.get(t, "/v1/keys/k").want(t, 200, `{"found":true,"value":"v"}`)
	ts.put(t, "/v1/keys/k", `{"value": ""}`).want(t, 200, `{"success":true}`)
	ts.get(t, "/v1/keys/k").want(t, 200, `{"found":true,"value":""}`)
	if r := ts.do(t, http.MethodHead, "/v1/keys/k", "", nil); r.status != 200 || r.body != "" {
		t.Fatalf("HEAD = %d %q; want 200 and no body", r.status, r.body)
	}
	ts.do(t, http.MethodDelete, "/v1/keys/k", "", nil).want(t, 200, `{"success":true,"deleted":true}`)
	// A missing key is 404 for Get, and OK for Delete.
	ts.get(t, "/v1/keys/k").want(t, 404, `{"found":false}`)
	if r := ts.do(t, http.MethodHead, "/v1/keys/k", "", nil); r.status != 404 {
		t.Fatalf("HEAD of a missing key = %d; want 404", r.status)
	}
	ts.do(t, http.MethodDelete, "/v1/keys/k", "", nil).want(t, 200, `{"success":true,"deleted":false}`)
	// Writes over HTTP are the same data as over gRPC.
	ts.put(t, "/v1/keys/shared", `{"value": "x"}`).want(t, 200, `{"success":true}`)
	if got, err := ts.svc.Get(context.Background(), &kvstorepb.GetRequest{Key: "shared"}); err != nil || got.GetValue() != "x" {
		t.Fatalf("Service.Get = %v, %v", got, err)
	}
}

func TestHTTPTTL(t *testing.T) {
	ts := startHTTP(t, Options{}, HTTPOptions{})
	ts.put(t, "/v1/keys/k", `{"value": "v", "ttl_seconds": 2}`).want(t, 200, `{"success":true}`)
	ts.clock.Add(2*time.Second - 1)
	ts.get(t, "/v1/keys/k").want(t, 200, `{"found":true,"value":"v"}`)
	ts.clock.Add(1)
	ts.get(t, "/v1/keys/k").want(t, 404, `{"found":false}`)
	ts.do(t, http.MethodDelete, "/v1/keys/k", "", nil).want(t, 200, `{"success":true,"deleted":false}`)
	// A set without ttl_seconds (or with 0) clears an earlier TTL.
	ts.put(t, "/v1/keys/p", `{"value": "1", "ttl_seconds": 1}`).want(t, 200, `{"success":true}`)
	ts.put(t, "/v1/keys/p", `{"value": "2"}`).want(t, 200, `{"success":true}`)
	ts.put(t, "/v1/keys/q", `{"value": "1", "ttl_seconds": 1}`).want(t, 200, `{"success":true}`)
	ts.put(t, "/v1/keys/q", `{"value": "2", "ttl_seconds": 0}`).want(t, 200, `{"success":true}`)
	ts.clock.Add(time.Hour)
	ts.get(t, "/v1/keys/p").want(t, 200, `{"found":true,"value":"2"}`)
	ts.get(t, "/v1/keys/q").want(t, 200, `{"found":true,"value":"2"}`)
}

// TestHTTPStoresTextExactly: every value the UTF-8 check lets through is
// stored as the JSON string denotes, U+FFFD and escapes that look like
// surrogates included.
func TestHTTPStoresTextExactly(t *testing.T) {
	ts := startHTTP(t, Options{}, HTTPOptions{})
	tests := []struct{ body, value string }{
		{`{"value": "\ud83d\ude00"}`, "😀"},
		{`{"value": "\uD83D\uDE00x"}`, "😀x"},
		{`{"value": "😀 ключ"}`, "😀 ключ"},
		{`{"value": "\ufffd\uFFFD�"}`, "\uFFFD\uFFFD\uFFFD"},
		{`{"value": "\\ud800"}`, `\ud800`},
		{`{"value": "\u0000\n\"\/\\"}`, "\x00\n\"/\\"},
		{`{"value": "\ud7ff\ue000"}`, "\ud7ff\ue000"},
	}
	for _, tt := range tests {
		ts.put(t, "/v1/keys/k", tt.body).want(t, 200, `{"success":true}`)
		got, err := ts.svc.Get(context.Background(), &kvstorepb.GetRequest{Key: "k"})
		if err != nil || got.GetValue() != tt.value {
			t.Fatalf("PUT %s stored %q, %v; want %q", tt.body, got.GetValue(), err, tt.value)
		}
	}
}

// TestHTTPKeys: a key is the percent-decoded rest of the path, "/"
// included, and is stored as exactly that string.
func TestHTTPKeys(t *testing.T) {
	ts := startHTTP(t, Options{}, HTTPOptions{})
	tests := []struct {
		path string // as sent, after /v1/keys/
		key  string
	}{
		{"plain", "plain"},
		{"a/b", "a/b"},
		{"c%2Fd", "c/d"},
		{"e//f", "e//f"},
		{"g/./h", "g/./h"},
		{"%2E%2E", ".."},
		{"trailing/", "trailing/"},
		{"/leading", "/leading"},
		{"with%20space", "with space"},
		{"plus+sign", "plus+sign"},
		{"percent%25", "percent%"},
		{"q%3Fmark%23hash", "q?mark#hash"},
		{url.PathEscape("ключ/κλειδί/🔑"), "ключ/κλειδί/🔑"},
		{"ключ-unescaped", "ключ-unescaped"}, // the client escapes it
	}
	for i, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			value := fmt.Sprintf(`{"value": "v%d"}`, i)
			ts.put(t, "/v1/keys/"+tt.path, value).want(t, 200, `{"success":true}`)
			got, err := ts.svc.Get(context.Background(), &kvstorepb.GetRequest{Key: tt.key})
			if err != nil || got.GetValue() != fmt.Sprintf("v%d", i) {
				t.Fatalf("PUT %q did not store key %q: %v, %v", tt.path, tt.key, got, err)
			}
			// The canonical encoding of the key names the same key.
			ts.get(t, "/v1/keys/"+url.PathEscape(tt.key)).want(t, 200, fmt.Sprintf(`{"found":true,"value":"v%d"}`, i))
			ts.do(t, http.MethodDelete, "/v1/keys/"+tt.path, "", nil).want(t, 200, `{"success":true,"deleted":true}`)
		})
	}
	// a/b and a%2Fb are one key.
	ts.put(t, "/v1/keys/x%2Fy", `{"value": "1"}`).want(t, 200, `{"success":true}`)
	ts.get(t, "/v1/keys/x/y").want(t, 200, `{"found":true,"value":"1"}`)
}

func TestHTTPInvalidArgument(t *testing.T) {
	ts := startHTTP(t, Options{MaxKeyBytes: 8, MaxValueBytes: 16}, HTTPOptions{})
	tests := []struct {
		name, method, path, body, msg string
	}{
		{"put empty key", "PUT", "/v1/keys/", `{"value": "v"}`, "key must not be empty"},
		{"get empty key", "GET", "/v1/keys/", "", "key must not be empty"},
		{"delete empty key", "DELETE", "/v1/keys/", "", "key must not be empty"},
		{"key over limit", "PUT", "/v1/keys/123456789", `{"value": "v"}`, "key is 9 bytes, over the 8-byte limit (--max-key-bytes)"},
		{"encoded key over limit", "GET", "/v1/keys/1234%2F6789", "", "key is 9 bytes, over the 8-byte limit"},
		{"value over limit", "PUT", "/v1/keys/k", `{"value": "` + strings.Repeat("x", 17) + `"}`, "value is 17 bytes, over the 16-byte limit (--max-value-bytes)"},
		{"negative ttl", "PUT", "/v1/keys/k", `{"value": "v", "ttl_seconds": -1}`, "ttl_seconds must not be negative"},
		{"overflowing ttl", "PUT", "/v1/keys/k", `{"value": "v", "ttl_seconds": 4611686018427387904}`, "would overflow"},
		{"ttl beyond int64", "PUT", "/v1/keys/k", `{"value": "v", "ttl_seconds": 1e30}`, `"ttl_seconds" must be an integer`},
		{"fractional ttl", "PUT", "/v1/keys/k", `{"value": "v", "ttl_seconds": 1.5}`, `"ttl_seconds" must be an integer`},
		{"string ttl", "PUT", "/v1/keys/k", `{"value": "v", "ttl_seconds": "30"}`, `"ttl_seconds" must be an integer`},
		{"number value", "PUT", "/v1/keys/k", `{"value": 1}`, `"value" must be a string`},
		{"malformed JSON", "PUT", "/v1/keys/k", `{"value": "v"`, "invalid JSON body"},
		{"not JSON", "PUT", "/v1/keys/k", `value=v`, "invalid JSON body"},
		{"unknown field", "PUT", "/v1/keys/k", `{"value": "v", "ttl": 5}`, `unknown field "ttl"`},
		// Issue 12: encoding/json took the last of two "value"s and matched
		// field names without regard to case (even "ſ" for "s"), so a proxy
		// or log reading the body another way would see another write.
		{"duplicate value", "PUT", "/v1/keys/k", `{"value": "a", "value": "b"}`, `duplicate field "value"`},
		{"duplicate ttl", "PUT", "/v1/keys/k", `{"value": "a", "ttl_seconds": 1, "ttl_seconds": 2}`, `duplicate field "ttl_seconds"`},
		{"duplicate null value", "PUT", "/v1/keys/k", `{"value": null, "value": "b"}`, `duplicate field "value"`},
		{"upper-case field", "PUT", "/v1/keys/k", `{"VALUE": "v"}`, `unknown field "VALUE" (field names are case-sensitive: "value")`},
		{"mixed-case ttl", "PUT", "/v1/keys/k", `{"value": "v", "TTL_Seconds": 5}`, `unknown field "TTL_Seconds" (field names are case-sensitive: "ttl_seconds")`},
		{"folded ttl", "PUT", "/v1/keys/k", `{"value": "v", "ttl_ſeconds": 5}`, `unknown field "ttl_ſeconds"`},
		{"string body", "PUT", "/v1/keys/k", `"v"`, "must be a JSON object like"},
		{"object cut short", "PUT", "/v1/keys/k", `{"value": "v",`, "invalid JSON body"},
		{"bad key", "PUT", "/v1/keys/k", `{value: "v"}`, "invalid JSON body"},
		{"array body", "PUT", "/v1/keys/k", `["v"]`, "must be a JSON object"},
		{"empty body", "PUT", "/v1/keys/k", ``, "request body is empty"},
		{"missing value", "PUT", "/v1/keys/k", `{"ttl_seconds": 5}`, `"value" is required`},
		{"null value", "PUT", "/v1/keys/k", `{"value": null}`, `"value" is required`},
		{"trailing data", "PUT", "/v1/keys/k", `{"value": "v"} {"value": "w"}`, "unexpected data after the JSON object"},
		{"trailing garbage", "PUT", "/v1/keys/k", `{"value": "v"} x`, "unexpected data after the JSON object"},
		{"query string", "GET", "/v1/keys/k?ttl=5", "", "the only query parameter is read=stale"},
		{"empty query", "GET", "/v1/keys/k?", "", "the only query parameter is read=stale"},
		{"invalid UTF-8 key", "GET", "/v1/keys/%FF", "", "valid UTF-8"},
		{"surrogate key", "PUT", "/v1/keys/%ED%A0%80", `{"value": "v"}`, "valid UTF-8"}, // as gRPC refuses it
		// Issue 13: encoding/json stored U+FFFD for each of these and
		// answered 200.
		{"invalid byte in value", "PUT", "/v1/keys/k", "{\"value\": \"a\xffb\"}", `"value" is not valid UTF-8: byte 0xff at offset 12 of the body`},
		{"cut UTF-8 sequence in value", "PUT", "/v1/keys/k", "{\"value\": \"\xe2\x82\"}", `"value" is not valid UTF-8: byte 0xe2 at offset 11`},
		{"UTF-8 surrogate in value", "PUT", "/v1/keys/k", "{\"value\": \"\xed\xa0\x80\"}", `"value" is not valid UTF-8: byte 0xed`},
		{"lone high surrogate", "PUT", "/v1/keys/k", `{"value": "a\ud800"}`, `"value" is not valid UTF-8: \ud800 at offset 12 of the body is an unpaired UTF-16 surrogate`},
		{"lone low surrogate", "PUT", "/v1/keys/k", `{"value": "\uDC00b"}`, `\uDC00 at offset 11 of the body is an unpaired`},
		{"high surrogate then letter", "PUT", "/v1/keys/k", `{"value": "\ud800\u0041"}`, `\ud800 at offset 11`},
		{"reversed pair", "PUT", "/v1/keys/k", `{"value": "\udc00\ud800"}`, `\udc00 at offset 11`},
		{"high before a pair", "PUT", "/v1/keys/k", `{"value": "\ud800\ud83d\ude00"}`, `\ud800 at offset 11`},
		{"surrogate after escaped backslash", "PUT", "/v1/keys/k", `{"value": "\\ud800\udfff"}`, `\udfff at offset 18`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.method == "PUT" {
				body = strings.NewReader(tt.body)
			}
			ts.do(t, tt.method, tt.path, "", body).wantError(t, 400, "INVALID_ARGUMENT", tt.msg)
		})
	}
	// Nothing invalid was stored.
	ts.get(t, "/v1/keys/k").want(t, 404, `{"found":false}`)
}

func TestHTTPBodyLimit(t *testing.T) {
	const maxValue = 4096
	ts := startHTTP(t, Options{MaxValueBytes: maxValue}, HTTPOptions{})
	// The largest value, every byte escaped as \u0001 (6 bytes), fits.
	largest := strings.Repeat("\x01", maxValue)
	body, _ := json.Marshal(map[string]string{"value": largest})
	ts.put(t, "/v1/keys/k", string(body)).want(t, 200, `{"success":true}`)
	if got, _ := ts.svc.Get(context.Background(), &kvstorepb.GetRequest{Key: "k"}); got.GetValue() != largest {
		t.Fatal("the largest escaped value did not round-trip")
	}
	// One byte more is the service's InvalidArgument, not a transport error.
	body, _ = json.Marshal(map[string]string{"value": largest + "\x01"})
	ts.put(t, "/v1/keys/k", string(body)).wantError(t, 400, "INVALID_ARGUMENT", "--max-value-bytes")

	// Past 6 × the value limit + slack, the body is refused unread: with a
	// Content-Length, and streamed without one.
	huge := `{"value": "` + strings.Repeat("x", 6*maxValue+bodySlack) + `"}`
	ts.put(t, "/v1/keys/k", huge).wantError(t, 413, "RESOURCE_EXHAUSTED", "request body is over the")
	ts.do(t, http.MethodPut, "/v1/keys/k", "application/json", struct{ io.Reader }{strings.NewReader(huge)}).
		wantError(t, 413, "RESOURCE_EXHAUSTED", "request body is over the")
}

func TestHTTPMethodAndContentType(t *testing.T) {
	ts := startHTTP(t, Options{}, HTTPOptions{})
	for _, method := range []string{http.MethodPost, http.MethodPatch, http.MethodOptions} {
		r := ts.do(t, method, "/v1/keys/k", "application/json", strings.NewReader(`{"value": "v"}`))
		r.wantError(t, 405, "UNIMPLEMENTED", "method "+method+" is not allowed")
		if allow := r.header.Get("Allow"); allow != "GET, HEAD, PUT, DELETE" {
			t.Fatalf("%s: Allow = %q", method, allow)
		}
	}
	if r := ts.do(t, http.MethodPost, "/healthz", "", nil); r.status != 405 || r.header.Get("Allow") == "" {
		t.Fatalf("POST /healthz = %d, Allow %q; want 405 with Allow", r.status, r.header.Get("Allow"))
	}

	for _, ct := range []string{"text/plain", "multipart/form-data; boundary=x", "application/jsonx", "bogus;;"} {
		ts.do(t, http.MethodPut, "/v1/keys/k", ct, strings.NewReader(`{"value": "v"}`)).
			wantError(t, 415, "INVALID_ARGUMENT", "send application/json")
	}
	// Issue 13: curl -d sends application/x-www-form-urlencoded unless told
	// otherwise; a JSON body under that type is taken, as grpc-gateway does.
	for i, ct := range []string{"", "application/json", "Application/JSON; charset=utf-8",
		"application/x-www-form-urlencoded", "Application/X-WWW-Form-URLEncoded; charset=UTF-8"} {
		ts.do(t, http.MethodPut, "/v1/keys/k", ct, strings.NewReader(fmt.Sprintf(`{"value":"v%d"}`, i))).want(t, 200, `{"success":true}`)
		ts.get(t, "/v1/keys/k").want(t, 200, fmt.Sprintf(`{"found":true,"value":"v%d"}`, i))
	}
	// A form body is still not JSON, and the error says why it was read as JSON.
	ts.do(t, http.MethodPut, "/v1/keys/k", "application/x-www-form-urlencoded", strings.NewReader(`value=w`)).
		wantError(t, 400, "INVALID_ARGUMENT", "invalid JSON body: invalid character 'v' looking for beginning of value; "+
			"form fields are not read: send a JSON object like")
	ts.get(t, "/v1/keys/k").want(t, 200, `{"found":true,"value":"v4"}`)
	// Other /v1/ paths answer in the API's error shape.
	ts.get(t, "/v1/keys").wantError(t, 404, "NOT_FOUND", "no such endpoint")
	ts.get(t, "/v1/nope").wantError(t, 404, "NOT_FOUND", "no such endpoint")
}

func TestHTTPUnavailable(t *testing.T) {
	svc := NewService(nil, Options{})
	srv := httptest.NewServer(NewHTTPHandler(svc, HTTPOptions{}))
	defer srv.Close()
	ts := &httpTestServer{url: srv.URL, client: srv.Client(), svc: svc}
	ts.get(t, "/v1/keys/k").wantError(t, 503, "UNAVAILABLE", "recovery in progress")
	ts.put(t, "/v1/keys/k", `{"value": "v"}`).wantError(t, 503, "UNAVAILABLE", "recovery in progress")
	ts.do(t, http.MethodDelete, "/v1/keys/k", "", nil).wantError(t, 503, "UNAVAILABLE", "recovery in progress")
	// Without a Ready func, ready means the actor is attached.
	if r := ts.get(t, "/readyz"); r.status != 503 {
		t.Fatalf("readyz before Attach = %d %q; want 503", r.status, r.body)
	}
	a := actor.New(actor.Config{ExpireInterval: -1})
	defer a.Stop()
	svc.Attach(a)
	if r := ts.get(t, "/readyz"); r.status != 200 || r.body != "ok" {
		t.Fatalf("readyz after Attach = %d %q; want 200 ok", r.status, r.body)
	}
	ts.put(t, "/v1/keys/k", `{"value": "v"}`).want(t, 200, `{"success":true}`)
	// A stopped actor is Unavailable too.
	a.Stop()
	ts.get(t, "/v1/keys/k").wantError(t, 503, "UNAVAILABLE", "shutting down")
}

func TestHTTPHealth(t *testing.T) {
	var ready atomic.Bool
	ts := startHTTP(t, Options{}, HTTPOptions{Ready: ready.Load})
	check := func(path string, status int, body string) {
		t.Helper()
		r := ts.get(t, path)
		if r.status != status || r.body != body {
			t.Fatalf("GET %s = %d %q; want %d %q", path, r.status, r.body, status, body)
		}
	}
	check("/healthz", 200, "ok")
	check("/readyz", 503, "not ready")
	ready.Store(true)
	check("/readyz", 200, "ok")
	ready.Store(false) // draining
	check("/readyz", 503, "not ready")
	check("/healthz", 200, "ok")
}

func TestHTTPPprofAndMetrics(t *testing.T) {
	plain := startHTTP(t, Options{}, HTTPOptions{})
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/cmdline", "/metrics"} {
		if r := plain.get(t, path); r.status != 404 {
			t.Fatalf("GET %s without the option = %d; want 404", path, r.status)
		}
	}
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "kvstore_up 1\n")
	})
	full := startHTTP(t, Options{}, HTTPOptions{Pprof: true, Metrics: metrics})
	if r := full.get(t, "/debug/pprof/"); r.status != 200 || !strings.Contains(r.body, "goroutine") {
		t.Fatalf("GET /debug/pprof/ = %d %.100q", r.status, r.body)
	}
	if r := full.get(t, "/debug/pprof/cmdline"); r.status != 200 {
		t.Fatalf("GET /debug/pprof/cmdline = %d", r.status)
	}
	if r := full.get(t, "/metrics"); r.status != 200 || r.body != "kvstore_up 1\n" {
		t.Fatalf("GET /metrics = %d %q", r.status, r.body)
	}
}

// lockedBuffer is a log sink the server writes and the test reads.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestHTTPPanicBecomesInternal(t *testing.T) {
	var logs lockedBuffer
	var panicking atomic.Bool
	ready := func() bool {
		if panicking.Load() {
			panic("boom")
		}
		return true
	}
	ts := startHTTP(t, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))}, HTTPOptions{Ready: ready})
	panicking.Store(true)
	ts.get(t, "/readyz").wantError(t, 500, "INTERNAL", "internal error")
	if l := logs.String(); !strings.Contains(l, "panic in HTTP handler") || !strings.Contains(l, "boom") || !strings.Contains(l, "http_test.go") {
		t.Fatalf("log = %q; want the panic with its stack", l)
	}
	// The server goes on serving.
	panicking.Store(false)
	if r := ts.get(t, "/readyz"); r.status != 200 {
		t.Fatalf("readyz after a panic = %d", r.status)
	}
	ts.put(t, "/v1/keys/k", `{"value": "v"}`).want(t, 200, `{"success":true}`)
}

// TestHTTPNoRequestLogs: a successful request logs nothing, even at debug.
func TestHTTPNoRequestLogs(t *testing.T) {
	var logs lockedBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ts := startHTTP(t, Options{Logger: logger}, HTTPOptions{})
	ts.put(t, "/v1/keys/k", `{"value": "v"}`).want(t, 200, `{"success":true}`)
	ts.get(t, "/v1/keys/k").want(t, 200, `{"found":true,"value":"v"}`)
	ts.get(t, "/v1/keys/").wantError(t, 400, "INVALID_ARGUMENT", "empty")
	if l := logs.String(); l != "" {
		t.Fatalf("requests logged %q", l)
	}
}

// TestHTTPStatusMapping: every gRPC code has an HTTP status and its
// canonical name.
func TestHTTPStatusMapping(t *testing.T) {
	tests := []struct {
		code   codes.Code
		status int
		name   string
	}{
		{codes.Canceled, 499, "CANCELLED"},
		{codes.Unknown, 500, "UNKNOWN"},
		{codes.InvalidArgument, 400, "INVALID_ARGUMENT"},
		{codes.DeadlineExceeded, 504, "DEADLINE_EXCEEDED"},
		{codes.NotFound, 404, "NOT_FOUND"},
		{codes.AlreadyExists, 409, "ALREADY_EXISTS"},
		{codes.PermissionDenied, 403, "PERMISSION_DENIED"},
		{codes.ResourceExhausted, 429, "RESOURCE_EXHAUSTED"},
		{codes.FailedPrecondition, 400, "FAILED_PRECONDITION"},
		{codes.Aborted, 409, "ABORTED"},
		{codes.OutOfRange, 400, "OUT_OF_RANGE"},
		{codes.Unimplemented, 501, "UNIMPLEMENTED"},
		{codes.Internal, 500, "INTERNAL"},
		{codes.Unavailable, 503, "UNAVAILABLE"},
		{codes.DataLoss, 500, "DATA_LOSS"},
		{codes.Unauthenticated, 401, "UNAUTHENTICATED"},
		{codes.Code(99), 500, "UNKNOWN"},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		writeStatus(rec, status.Error(tt.code, "msg"))
		want := fmt.Sprintf(`{"code":%q,"message":"msg"}`+"\n", tt.name)
		if rec.Code != tt.status || rec.Body.String() != want {
			t.Errorf("%v: got %d %q; want %d %q", tt.code, rec.Code, rec.Body.String(), tt.status, want)
		}
	}
}
