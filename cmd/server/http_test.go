package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	kvstorepb "kvstore/proto"
)

func httpDo(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// TestHTTPEndToEnd runs the real server and uses REST, health and
// metrics over real HTTP, with gRPC on the same data.
func TestHTTPEndToEnd(t *testing.T) {
	mock := clock.NewMock()
	mock.Set(time.Unix(1_700_000_000, 0))
	m, stop := runMain(t, t.TempDir(), mock)
	defer stop()
	base := "http://" + m.HTTPAddr().String()

	steps := []struct {
		method, path, body string
		wantCode           int
		wantBody           string
	}{
		{"GET", "/healthz", "", 200, "ok"},
		{"GET", "/readyz", "", 200, "ok"},
		{"PUT", "/v1/keys/a%2Fb", `{"value":"v1"}`, 200, `{"success":true}`},
		{"GET", "/v1/keys/a/b", "", 200, `{"found":true,"value":"v1"}`},
		{"PUT", "/v1/keys/t", `{"value":"x","ttl_seconds":5}`, 200, `{"success":true}`},
		{"GET", "/v1/keys/missing", "", 404, `{"found":false}`},
		{"PUT", "/v1/keys/a", `{"value":"v","ttl_seconds":-1}`, 400, `"code":"INVALID_ARGUMENT"`},
		{"PUT", "/v1/keys/a", `{"value":`, 400, `"code":"INVALID_ARGUMENT"`},
		{"DELETE", "/v1/keys/a%2Fb", "", 200, `{"success":true,"deleted":true}`},
		{"GET", "/v1/keys/a%2Fb", "", 404, `{"found":false}`},
	}
	for _, s := range steps {
		code, body := httpDo(t, s.method, base+s.path, s.body)
		if code != s.wantCode || !strings.Contains(body, s.wantBody) {
			t.Fatalf("%s %s: %d %s; want %d containing %s", s.method, s.path, code, body, s.wantCode, s.wantBody)
		}
	}
	// The same data over gRPC, and TTL on the injected clock.
	c := dial(t, m.Addr().String())
	if resp, err := c.Get(context.Background(), &kvstorepb.GetRequest{Key: "t"}); err != nil || resp.GetValue() != "x" {
		t.Fatalf("gRPC Get(t) = %v, %v", resp, err)
	}
	mock.Add(5 * time.Second)
	if code, _ := httpDo(t, "GET", base+"/v1/keys/t", ""); code != 404 {
		t.Fatalf("expired key: HTTP %d; want 404", code)
	}

	metrics := scrape(t, base+"/metrics")
	if v := sum(metrics, "kvstore_keys", nil); v != 1 {
		t.Errorf("kvstore_keys = %v; want 1 (t, expired but not yet collected)", v)
	}
	if v := sum(metrics, "kvstore_http_requests_total", map[string]string{"route": "/v1/keys/{key}", "code": "400"}); v != 2 {
		t.Errorf("HTTP 400s counted = %v; want 2", v)
	}
	if v := sum(metrics, "grpc_server_handled_total", map[string]string{"grpc_method": "Get", "grpc_code": "OK"}); v != 1 {
		t.Errorf("gRPC Get OK counted = %v; want 1", v)
	}
	if v := sum(metrics, "kvstore_wal_records_total", nil); v != 3 {
		t.Errorf("log records = %v; want 3 (two sets, one delete)", v)
	}
	if v := sum(metrics, "kvstore_recovery_duration_seconds", nil); v <= 0 {
		t.Errorf("recovery duration = %v; want > 0", v)
	}
	if code, _ := httpDo(t, "GET", base+"/debug/pprof/", ""); code != 404 {
		t.Errorf("pprof served without --pprof: %d", code)
	}
}

func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return families
}

// sum adds up the counter or gauge values of name's series whose labels
// include every label given.
func sum(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	total := 0.0
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
				continue next
			}
		}
		total += m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	return total
}
