package rpc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
)

type logRecord struct {
	Level, Msg, Remote, Err string
	Suppressed              int
}

func records(t *testing.T, b *bytes.Buffer) []logRecord {
	t.Helper()
	var recs []logRecord
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if line == "" {
			continue
		}
		var r logRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("not JSON: %q: %v", line, err)
		}
		recs = append(recs, r)
	}
	b.Reset()
	return recs
}

// TestHTTPErrorLogStructured: net/http's lines become records of the
// server's logger, a failed handshake with its client and error apart.
func TestHTTPErrorLogStructured(t *testing.T) {
	var b bytes.Buffer
	l := NewHTTPErrorLog(slog.New(slog.NewJSONHandler(&b, nil)), clock.NewMock())
	// As net/http writes them (server.go, logf).
	l.Printf("http: TLS handshake error from %s: %v", "[::1]:4242", "remote error: tls: bad certificate")
	l.Printf("http: Accept error: %v; retrying in %v", "accept tcp: too many open files", 5*time.Millisecond)
	got := records(t, &b)
	want := []logRecord{
		{Level: "WARN", Msg: "TLS handshake failed", Remote: "[::1]:4242", Err: "remote error: tls: bad certificate"},
		{Level: "WARN", Msg: "HTTP server error", Err: "http: Accept error: accept tcp: too many open files; retrying in 5ms"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("records:\n%+v\nwant:\n%+v", got, want)
	}
}

// TestHTTPErrorLogRateLimit: at most HTTPErrorLogLimit lines a second;
// the first line of a later second says how many were dropped.
func TestHTTPErrorLogRateLimit(t *testing.T) {
	var b bytes.Buffer
	mock := clock.NewMock()
	l := NewHTTPErrorLog(slog.New(slog.NewJSONHandler(&b, nil)), mock)
	handshake := func(n int) {
		for i := range n {
			l.Printf("http: TLS handshake error from 127.0.0.1:%d: EOF", 1000+i)
		}
	}
	handshake(HTTPErrorLogLimit + 5)
	if recs := records(t, &b); len(recs) != HTTPErrorLogLimit || recs[len(recs)-1].Suppressed != 0 {
		t.Fatalf("first second: %d records (%+v); want %d, none with suppressed", len(recs), recs, HTTPErrorLogLimit)
	}
	mock.Add(time.Second - time.Nanosecond)
	handshake(1)
	if recs := records(t, &b); len(recs) != 0 {
		t.Fatalf("still the first second: %+v; want the line dropped", recs)
	}
	mock.Add(time.Nanosecond)
	handshake(2)
	recs := records(t, &b)
	if len(recs) != 2 || recs[0].Suppressed != 6 || recs[1].Suppressed != 0 {
		t.Fatalf("next second: %+v; want 2 records, the first with suppressed=6", recs)
	}
}
