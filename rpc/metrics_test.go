package rpc

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"

	"kvstore/actor"
	kvstorepb "kvstore/proto"
	"kvstore/snap"
	"kvstore/wal"
	"kvstore/wal/actorlog"
)

// scrape fetches m's exposition through its handler and parses it.
func scrape(t *testing.T, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics = %d: %s", rec.Code, rec.Body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parse exposition: %v", err)
	}
	return fams
}

// sample returns the metric of family name whose labels include want; it
// fails the test when there is none.
func sample(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	t.Helper()
	fam, ok := fams[name]
	if !ok {
		t.Fatalf("no metric family %s", name)
	}
next:
	for _, m := range fam.GetMetric() {
		labels := map[string]string{}
		for _, lp := range m.GetLabel() {
			labels[lp.GetName()] = lp.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		return m
	}
	t.Fatalf("%s has no series with labels %v", name, want)
	return nil
}

// value is the value of a counter, gauge or untyped sample.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	t.Helper()
	m := sample(t, fams, name, labels)
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	t.Fatalf("%s%v is not a counter or gauge", name, labels)
	return 0
}

func wantValue(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string, want float64) {
	t.Helper()
	if got := value(t, fams, name, labels); got != want {
		t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}

func histogram(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string) *dto.Histogram {
	t.Helper()
	h := sample(t, fams, name, labels).GetHistogram()
	if h == nil {
		t.Fatalf("%s%v is not a histogram", name, labels)
	}
	return h
}

// TestMetrics drives a real actor, log, snapshotter and gRPC server through
// the hooks and the interceptor, then checks the scraped exposition.
func TestMetrics(t *testing.T) {
	m := NewMetrics(nil)
	mock := clock.NewMock()
	mock.Set(time.Unix(1_700_000_000, 0))
	m.now = mock.Now

	dir := t.TempDir()
	log, err := wal.Open(wal.Options{
		Dir:          filepath.Join(dir, "wal"),
		Fsync:        wal.FsyncAlways,
		ObserveSync:  m.ObserveSync,
		ObserveGroup: m.ObserveGroup,
	})
	if err != nil {
		t.Fatal(err)
	}
	log.Start(1)
	a := actor.New(actor.Config{Log: actorlog.New(log), ExpireInterval: -1, ObserveBatch: m.ObserveBatch})
	snapshotter, err := snap.NewSnapshotter(snap.SnapshotterConfig{
		Dir: filepath.Join(dir, "snap"),
		Freeze: func(ctx context.Context) (snap.Source, uint64, error) {
			v, seq, err := a.Snapshot(ctx)
			return v, seq, err
		},
		Compact:         log.Compact,
		Clock:           mock,
		ObserveDuration: m.ObserveSnapshot,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(NewService(a, Options{Clock: mock}), ServerOptions{Unary: []grpc.UnaryServerInterceptor{m.UnaryInterceptor()}})
	// Cleanups run last first: the server stops, then the actor, then the log.
	t.Cleanup(func() {
		if err := log.Close(); err != nil {
			t.Error(err)
		}
	})
	t.Cleanup(a.Stop)
	conn := serveLoopback(t, srv.Serve, stopNow(srv))
	m.Attach(a, func() LogStats {
		st := log.Stats()
		return LogStats{Bytes: st.Bytes, Records: st.Records, Syncs: st.Syncs, Failed: log.Err() != nil}
	}, func() SnapshotStats {
		st := snapshotter.Stats()
		return SnapshotStats{Written: st.Written, Failed: st.Failed, LastBytes: st.LastBytes, LastTime: st.LastTime}
	})
	m.SetRecoveryDuration(1500 * time.Millisecond)
	client := kvstorepb.NewKVStoreClient(conn)
	ctx := context.Background()

	// Before anything: the components report zeros, the last snapshot's
	// size and age are absent rather than zero.
	fams := scrape(t, m)
	wantValue(t, fams, "kvstore_keys", nil, 0)
	wantValue(t, fams, "kvstore_wal_records_total", nil, 0)
	wantValue(t, fams, "kvstore_snapshots_total", nil, 0)
	for _, name := range []string{"kvstore_snapshot_last_size_bytes", "kvstore_snapshot_age_seconds"} {
		if _, ok := fams[name]; ok {
			t.Errorf("%s exported before any snapshot", name)
		}
	}

	sets := []*kvstorepb.SetRequest{
		{Key: "a", Value: "1"},
		{Key: "b", Value: "2", TtlSeconds: 10},
		{Key: "c", Value: "3", TtlSeconds: 10},
		{Key: "d", Value: "4"},
	}
	for _, req := range sets {
		if _, err := client.Set(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := client.Set(ctx, &kvstorepb.SetRequest{Key: ""}); err == nil {
		t.Fatal("Set with an empty key succeeded")
	}
	for _, key := range []string{"a", "missing"} {
		if _, err := client.Get(ctx, &kvstorepb.GetRequest{Key: key}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := client.Delete(ctx, &kvstorepb.DeleteRequest{Key: "a"}); err != nil {
		t.Fatal(err)
	}

	fams = scrape(t, m)
	wantValue(t, fams, "kvstore_keys", nil, 3)
	wantValue(t, fams, "kvstore_keys_with_ttl", nil, 2)
	wantValue(t, fams, "kvstore_keys_expired_total", nil, 0)

	// Past b's and c's deadline, one tick removes both.
	mock.Add(20 * time.Second)
	if removed, err := a.Tick(ctx, mock.Now()); err != nil || removed != 2 {
		t.Fatalf("Tick = %d, %v; want 2, nil", removed, err)
	}
	info, err := snapshotter.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mock.Add(5 * time.Second)

	// The HTTP middleware, on a handler that answers by path.
	h := m.HTTP("/v1/keys/{key}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/keys/missing" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	for _, path := range []string{"/v1/keys/x", "/v1/keys/y", "/v1/keys/missing"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPut, path, nil))
	}
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("BREW", "/v1/keys/x", nil))

	fams = scrape(t, m)

	// The actor.
	wantValue(t, fams, "kvstore_keys", nil, 1)
	wantValue(t, fams, "kvstore_keys_with_ttl", nil, 0)
	wantValue(t, fams, "kvstore_keys_expired_total", nil, 2)
	wantValue(t, fams, "kvstore_actor_queued_requests", nil, 0)
	// 4 sets, 2 gets and a delete reached the actor (the bad Set did
	// not), and every pass was observed before the tick was answered.
	if b := histogram(t, fams, "kvstore_actor_batch_commands", nil); b.GetSampleSum() != 7 || b.GetSampleCount() == 0 {
		t.Errorf("batch histogram sum %v count %d, want sum 7", b.GetSampleSum(), b.GetSampleCount())
	}

	// gRPC, under go-grpc-middleware's names.
	kv := "kvstore.v1.KVStore"
	for _, c := range []struct {
		method, code string
		want         float64
	}{
		{"Set", "OK", 4},
		{"Set", "InvalidArgument", 1},
		{"Get", "OK", 2},
		{"Delete", "OK", 1},
	} {
		wantValue(t, fams, "grpc_server_handled_total",
			map[string]string{"grpc_type": "unary", "grpc_service": kv, "grpc_method": c.method, "grpc_code": c.code}, c.want)
	}
	set := map[string]string{"grpc_type": "unary", "grpc_service": kv, "grpc_method": "Set"}
	wantValue(t, fams, "grpc_server_started_total", set, 5)
	wantValue(t, fams, "grpc_server_msg_received_total", set, 5)
	// A failed call sends no response message.
	wantValue(t, fams, "grpc_server_msg_sent_total", set, 4)
	if got := histogram(t, fams, "grpc_server_handling_seconds", set).GetSampleCount(); got != 5 {
		t.Errorf("Set latency count = %d, want 5", got)
	}
	for _, name := range []string{"kvstore_grpc_requests_total", "kvstore_grpc_request_duration_seconds"} {
		if _, ok := fams[name]; ok {
			t.Errorf("%s is still exported", name)
		}
	}

	// The log: 4 sets and 1 delete, each durable before its reply.
	wantValue(t, fams, "kvstore_wal_records_total", nil, 5)
	wantValue(t, fams, "kvstore_wal_failed", nil, 0)
	if v := value(t, fams, "kvstore_wal_written_bytes_total", nil); v <= 0 {
		t.Errorf("kvstore_wal_written_bytes_total = %v, want > 0", v)
	}
	syncs := value(t, fams, "kvstore_wal_fsyncs_total", nil)
	if syncs <= 0 {
		t.Errorf("kvstore_wal_fsyncs_total = %v, want > 0", syncs)
	}
	if got := histogram(t, fams, "kvstore_wal_fsync_duration_seconds", nil).GetSampleCount(); float64(got) != syncs {
		t.Errorf("fsync latency count = %d, want %v (one per fsync)", got, syncs)
	}
	if g := histogram(t, fams, "kvstore_wal_group_commit_records", nil); g.GetSampleSum() != 5 {
		t.Errorf("group commit records sum = %v, want 5", g.GetSampleSum())
	}

	// The snapshot, 5 seconds old.
	wantValue(t, fams, "kvstore_snapshots_total", nil, 1)
	wantValue(t, fams, "kvstore_snapshot_failures_total", nil, 0)
	wantValue(t, fams, "kvstore_snapshot_last_size_bytes", nil, float64(info.Bytes))
	wantValue(t, fams, "kvstore_snapshot_age_seconds", nil, 5)
	wantValue(t, fams, "kvstore_snapshot_last_success_timestamp_seconds", nil, 1_700_000_020)
	if got := histogram(t, fams, "kvstore_snapshot_duration_seconds", nil).GetSampleCount(); got != 1 {
		t.Errorf("snapshot duration count = %d, want 1", got)
	}

	// HTTP: the route is the label, never the key; odd methods collapse.
	route := "/v1/keys/{key}"
	wantValue(t, fams, "kvstore_http_requests_total", map[string]string{"route": route, "method": "put", "code": "204"}, 2)
	wantValue(t, fams, "kvstore_http_requests_total", map[string]string{"route": route, "method": "put", "code": "404"}, 1)
	wantValue(t, fams, "kvstore_http_requests_total", map[string]string{"route": route, "method": "unknown", "code": "204"}, 1)
	if got := histogram(t, fams, "kvstore_http_request_duration_seconds",
		map[string]string{"route": route, "method": "put"}).GetSampleCount(); got != 3 {
		t.Errorf("HTTP PUT latency count = %d, want 3", got)
	}

	// Set once by the server; and the runtime and process collectors.
	wantValue(t, fams, "kvstore_recovery_duration_seconds", nil, 1.5)
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("no %s", name)
		}
	}
}

// TestMetricsInterceptorCodes: errors that are not statuses count as
// Unknown, a cancelled context as Canceled, and the method name is split
// into service and method.
func TestMetricsInterceptorCodes(t *testing.T) {
	m := NewMetrics(nil)
	intercept := m.UnaryInterceptor()
	info := &grpc.UnaryServerInfo{FullMethod: "/pkg.Svc/Do"}
	fail := func(context.Context, any) (any, error) { return nil, errors.New("boom") }
	cancelled := func(context.Context, any) (any, error) { return nil, context.Canceled }
	ok := func(context.Context, any) (any, error) { return "resp", nil }
	for range 2 {
		if _, err := intercept(context.Background(), nil, info, fail); err == nil {
			t.Fatal("error swallowed")
		}
	}
	if _, err := intercept(context.Background(), nil, info, cancelled); err != context.Canceled {
		t.Fatalf("intercept = %v, want the handler's error", err)
	}
	if resp, err := intercept(context.Background(), nil, info, ok); resp != "resp" || err != nil {
		t.Fatalf("intercept = %v, %v", resp, err)
	}
	fams := scrape(t, m)
	labels := map[string]string{"grpc_type": "unary", "grpc_service": "pkg.Svc", "grpc_method": "Do"}
	for code, want := range map[codes.Code]float64{codes.Unknown: 2, codes.Canceled: 1, codes.OK: 1} {
		labels["grpc_code"] = code.String()
		wantValue(t, fams, "grpc_server_handled_total", labels, want)
	}
}

// TestMetricsStreams: a reflection stream through the stream interceptor
// is counted as a bidi stream, with its messages.
func TestMetricsStreams(t *testing.T) {
	m := NewMetrics(nil)
	a := actor.New(actor.Config{ExpireInterval: -1})
	t.Cleanup(a.Stop)
	srv := NewServer(NewService(a, Options{}), ServerOptions{Stream: []grpc.StreamServerInterceptor{m.StreamInterceptor()}})
	conn := serveLoopback(t, srv.Serve, stopNow(srv))
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		req := &reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}
		if err := stream.Send(req); err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	// The server writes the stream's status after the interceptor has
	// counted it: EOF here is the hand-off.
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("Recv after CloseSend = %v, want EOF", err)
	}
	fams := scrape(t, m)
	labels := map[string]string{"grpc_type": "bidi_stream", "grpc_service": "grpc.reflection.v1.ServerReflection", "grpc_method": "ServerReflectionInfo"}
	wantValue(t, fams, "grpc_server_started_total", labels, 1)
	wantValue(t, fams, "grpc_server_msg_received_total", labels, 2)
	wantValue(t, fams, "grpc_server_msg_sent_total", labels, 2)
	labels["grpc_code"] = codes.OK.String()
	wantValue(t, fams, "grpc_server_handled_total", labels, 1)
}
