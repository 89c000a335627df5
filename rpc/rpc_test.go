package rpc

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"kvstore/actor"
	kvstorepb "kvstore/proto"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type testServer struct {
	srv    *Server
	client kvstorepb.KVStoreClient
	health healthpb.HealthClient
	clock  *clock.Mock
}

// serveLoopback runs serve on a fresh loopback listener and returns a
// plaintext client connection to it. At cleanup it closes the connection,
// calls stop (which must make serve return) and waits for serve.
func serveLoopback(tb testing.TB, serve func(net.Listener) error, stop func()) *grpc.ClientConn {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		conn.Close()
		stop()
		<-served
	})
	return conn
}

// stopNow shuts srv down without a grace period.
func stopNow(srv *Server) func() {
	return func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		srv.Shutdown(ctx)
	}
}

// startServer serves a fresh actor on a loopback port and stops both at
// cleanup.
func startServer(tb testing.TB, cfg actor.Config, opts Options) *testServer {
	tb.Helper()
	mock := clock.NewMock()
	mock.Set(time.Unix(1_700_000_000, 0))
	cfg.ExpireInterval = -1
	a := actor.New(cfg)
	opts.Clock = mock
	srv := NewServer(NewService(a, opts), ServerOptions{})
	tb.Cleanup(a.Stop) // runs after serveLoopback's cleanup
	conn := serveLoopback(tb, srv.Serve, stopNow(srv))
	return &testServer{
		srv:    srv,
		clock:  mock,
		client: kvstorepb.NewKVStoreClient(conn),
		health: healthpb.NewHealthClient(conn),
	}
}

func wantCode(t *testing.T, err error, code codes.Code, msgPart string) {
	t.Helper()
	s, _ := status.FromError(err)
	if s.Code() != code || !strings.Contains(s.Message(), msgPart) {
		t.Fatalf("got %v: %q; want %v containing %q", s.Code(), s.Message(), code, msgPart)
	}
}

func TestSetGetDelete(t *testing.T) {
	ts := startServer(t, actor.Config{}, Options{})
	ctx := context.Background()
	set, err := ts.client.Set(ctx, &kvstorepb.SetRequest{Key: "k", Value: "v"})
	if err != nil || !set.GetSuccess() || set.GetError() != "" {
		t.Fatalf("Set = %v, %v", set, err)
	}
	get, err := ts.client.Get(ctx, &kvstorepb.GetRequest{Key: "k"})
	if err != nil || !get.GetFound() || get.GetValue() != "v" {
		t.Fatalf("Get = %v, %v", get, err)
	}
	del, err := ts.client.Delete(ctx, &kvstorepb.DeleteRequest{Key: "k"})
	if err != nil || !del.GetSuccess() || !del.GetDeleted() {
		t.Fatalf("Delete = %v, %v", del, err)
	}
	// A missing key is not an error, for Get or Delete.
	get, err = ts.client.Get(ctx, &kvstorepb.GetRequest{Key: "k"})
	if err != nil || get.GetFound() || get.GetValue() != "" {
		t.Fatalf("Get(missing) = %v, %v", get, err)
	}
	del, err = ts.client.Delete(ctx, &kvstorepb.DeleteRequest{Key: "k"})
	if err != nil || !del.GetSuccess() || del.GetDeleted() {
		t.Fatalf("Delete(missing) = %v, %v", del, err)
	}
}

func TestInvalidArgument(t *testing.T) {
	ts := startServer(t, actor.Config{}, Options{MaxKeyBytes: 8, MaxValueBytes: 16})
	ctx := context.Background()
	tests := []struct {
		name string
		call func() error
		msg  string
	}{
		{"set empty key", func() error {
			_, err := ts.client.Set(ctx, &kvstorepb.SetRequest{Value: "v"})
			return err
		}, "key must not be empty"},
		{"get empty key", func() error {
			_, err := ts.client.Get(ctx, &kvstorepb.GetRequest{})
			return err
		}, "key must not be empty"},
		{"delete empty key", func() error {
			_, err := ts.client.Delete(ctx, &kvstorepb.DeleteRequest{})
			return err
		}, "key must not be empty"},
		{"key over limit", func() error {
			_, err := ts.client.Set(ctx, &kvstorepb.SetRequest{Key: "123456789", Value: "v"})
			return err
		}, "key is 9 bytes, over the 8-byte limit (--max-key-bytes)"},
		{"get key over limit", func() error {
			_, err := ts.client.Get(ctx, &kvstorepb.GetRequest{Key: "123456789"})
			return err
		}, "--max-key-bytes"},
		{"value over limit", func() error {
			_, err := ts.client.Set(ctx, &kvstorepb.SetRequest{Key: "k", Value: strings.Repeat("x", 17)})
			return err
		}, "value is 17 bytes, over the 16-byte limit (--max-value-bytes)"},
		{"negative ttl", func() error {
			_, err := ts.client.Set(ctx, &kvstorepb.SetRequest{Key: "k", Value: "v", TtlSeconds: -1})
			return err
		}, "ttl_seconds must not be negative"},
		{"overflowing ttl", func() error {
			_, err := ts.client.Set(ctx, &kvstorepb.SetRequest{Key: "k", Value: "v", TtlSeconds: 1 << 62})
			return err
		}, "would overflow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, tt.call(), codes.InvalidArgument, tt.msg)
		})
	}
	// Nothing invalid was stored.
	if get, err := ts.client.Get(ctx, &kvstorepb.GetRequest{Key: "k"}); err != nil || get.GetFound() {
		t.Fatalf("Get after invalid sets = %v, %v", get, err)
	}
}

func TestValueAtDefaultLimit(t *testing.T) {
	ts := startServer(t, actor.Config{}, Options{})
	ctx := context.Background()
	max := strings.Repeat("x", DefaultMaxValueBytes)
	if _, err := ts.client.Set(ctx, &kvstorepb.SetRequest{Key: strings.Repeat("k", DefaultMaxKeyBytes), Value: max}); err != nil {
		t.Fatalf("Set of the largest valid key and value: %v", err)
	}
	_, err := ts.client.Set(ctx, &kvstorepb.SetRequest{Key: "k", Value: max + "x"})
	wantCode(t, err, codes.InvalidArgument, "--max-value-bytes")
}

func TestTTL(t *testing.T) {
	ts := startServer(t, actor.Config{}, Options{})
	ctx := context.Background()
	if _, err := ts.client.Set(ctx, &kvstorepb.SetRequest{Key: "k", Value: "v", TtlSeconds: 2}); err != nil {
		t.Fatal(err)
	}
	ts.clock.Add(2*time.Second - 1)
	if get, _ := ts.client.Get(ctx, &kvstorepb.GetRequest{Key: "k"}); !get.GetFound() {
		t.Fatal("key gone before its TTL")
	}
	ts.clock.Add(1)
	if get, _ := ts.client.Get(ctx, &kvstorepb.GetRequest{Key: "k"}); get.GetFound() {
		t.Fatal("expired key returned")
	}
	if del, _ := ts.client.Delete(ctx, &kvstorepb.DeleteRequest{Key: "k"}); del.GetDeleted() {
		t.Fatal("Delete of an expired key reported deleted=true")
	}
	// A set without TTL clears an earlier TTL.
	ts.client.Set(ctx, &kvstorepb.SetRequest{Key: "p", Value: "1", TtlSeconds: 1})
	ts.client.Set(ctx, &kvstorepb.SetRequest{Key: "p", Value: "2"})
	ts.clock.Add(time.Hour)
	if get, _ := ts.client.Get(ctx, &kvstorepb.GetRequest{Key: "p"}); !get.GetFound() || get.GetValue() != "2" {
		t.Fatalf("Get(p) = %v; the second Set must have cleared the TTL", get)
	}
}

func TestHealth(t *testing.T) {
	ts := startServer(t, actor.Config{}, Options{})
	ctx := context.Background()
	for _, svc := range []string{"", "kvstore.v1.KVStore"} {
		resp, err := ts.health.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Fatalf("before SetServing, %q: %v, %v; want NOT_SERVING", svc, resp, err)
		}
	}
	ts.srv.SetServing()
	for _, svc := range []string{"", "kvstore.v1.KVStore"} {
		resp, err := ts.health.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("after SetServing, %q: %v, %v; want SERVING", svc, resp, err)
		}
	}
}

func TestPanicBecomesInternal(t *testing.T) {
	s := &Server{logger: Options{}.withDefaults().Logger}
	info := &grpc.UnaryServerInfo{FullMethod: "/kvstore.v1.KVStore/Get"}
	_, err := s.recoverPanic(context.Background(), nil, info, func(context.Context, any) (any, error) {
		panic("boom")
	})
	wantCode(t, err, codes.Internal, "internal error")
	resp, err := s.recoverPanic(context.Background(), nil, info, func(context.Context, any) (any, error) {
		return "ok", nil
	})
	if err != nil || resp != "ok" {
		t.Fatalf("after a panic: %v, %v", resp, err)
	}
}

// holdLog is a log that holds every reply until release is closed: a
// write stays in flight for as long as a test needs.
type holdLog struct {
	mu        sync.Mutex
	batches   []actor.Batch
	submitted chan struct{}
}

func (l *holdLog) Submit(b actor.Batch) {
	l.mu.Lock()
	l.batches = append(l.batches, b)
	l.mu.Unlock()
	l.submitted <- struct{}{}
}
func (l *holdLog) DurableSeq() uint64 { return 0 }
func (l *holdLog) Err() error         { return nil }
func (l *holdLog) release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, b := range l.batches {
		b.Done(nil)
	}
	l.batches = nil
}

// TestShutdownWaitsForInFlight: Shutdown lets an in-flight write finish,
// and reports NOT_SERVING meanwhile.
func TestShutdownWaitsForInFlight(t *testing.T) {
	log := &holdLog{submitted: make(chan struct{}, 1)}
	ts := startServer(t, actor.Config{Log: log}, Options{})
	ts.srv.SetServing()
	setErr := make(chan error, 1)
	go func() {
		_, err := ts.client.Set(context.Background(), &kvstorepb.SetRequest{Key: "k", Value: "v"})
		setErr <- err
	}()
	<-log.submitted
	stopped := make(chan struct{})
	go func() {
		ts.srv.Shutdown(context.Background())
		close(stopped)
	}()
	// Health flips before the drain ends; the Set is still held. Asked
	// in process: over the connection, the GOAWAY of the drain can beat
	// the check, which then redials a closed listener.
	for {
		resp, err := ts.srv.health.Check(context.Background(), &healthpb.HealthCheckRequest{})
		if err != nil {
			t.Fatalf("health during drain: %v", err)
		}
		if resp.GetStatus() == healthpb.HealthCheckResponse_NOT_SERVING {
			break
		}
	}
	select {
	case <-stopped:
		t.Fatal("Shutdown returned while a request was in flight")
	default:
	}
	log.release()
	if err := <-setErr; err != nil {
		t.Fatalf("in-flight Set failed: %v", err)
	}
	<-stopped
}

// TestShutdownGraceExpires: past the grace period, in-flight RPCs are
// cancelled and Shutdown returns.
func TestShutdownGraceExpires(t *testing.T) {
	log := &holdLog{submitted: make(chan struct{}, 1)}
	ts := startServer(t, actor.Config{Log: log}, Options{})
	setErr := make(chan error, 1)
	go func() {
		_, err := ts.client.Set(context.Background(), &kvstorepb.SetRequest{Key: "k", Value: "v"})
		setErr <- err
	}()
	<-log.submitted
	// The grace period is a context on the mock clock, created before the
	// shutdown starts so advancing the clock cannot miss it.
	grace, cancel := ts.clock.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stopped := make(chan struct{})
	go func() {
		ts.srv.Shutdown(grace)
		close(stopped)
	}()
	ts.clock.Add(5 * time.Second)
	<-stopped
	if err := <-setErr; status.Code(err) != codes.Unavailable && status.Code(err) != codes.Canceled {
		t.Fatalf("Set after forced stop = %v; want Unavailable or Canceled", err)
	}
	log.release()
}

func TestUnavailableUntilAttached(t *testing.T) {
	svc := NewService(nil, Options{})
	ctx := context.Background()
	_, err := svc.Set(ctx, &kvstorepb.SetRequest{Key: "k", Value: "v"})
	wantCode(t, err, codes.Unavailable, "recovery in progress")
	_, err = svc.Get(ctx, &kvstorepb.GetRequest{Key: "k"})
	wantCode(t, err, codes.Unavailable, "recovery in progress")
	_, err = svc.Delete(ctx, &kvstorepb.DeleteRequest{Key: "k"})
	wantCode(t, err, codes.Unavailable, "recovery in progress")
	a := actor.New(actor.Config{ExpireInterval: -1})
	defer a.Stop()
	svc.Attach(a)
	if _, err := svc.Set(ctx, &kvstorepb.SetRequest{Key: "k", Value: "v"}); err != nil {
		t.Fatalf("Set after Attach: %v", err)
	}
}

func TestReadyFollowsHealth(t *testing.T) {
	ts := startServer(t, actor.Config{}, Options{})
	if ts.srv.Ready() {
		t.Fatal("Ready before SetServing")
	}
	ts.srv.SetServing()
	if !ts.srv.Ready() {
		t.Fatal("not Ready after SetServing")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ts.srv.Shutdown(ctx)
	if ts.srv.Ready() {
		t.Fatal("Ready after Shutdown")
	}
	resp, err := ts.health.Check(context.Background(), &healthpb.HealthCheckRequest{})
	if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
		t.Fatal("gRPC health still SERVING after Shutdown")
	}
}

// TestRequestTimeout: the server bounds a request stuck behind a log that
// never answers, whatever deadline the client set.
func TestRequestTimeout(t *testing.T) {
	log := &holdLog{submitted: make(chan struct{}, 1)}
	a := actor.New(actor.Config{Log: log, ExpireInterval: -1})
	defer a.Stop()
	defer log.release()
	svc := NewService(a, Options{RequestTimeout: time.Nanosecond})
	_, err := svc.Set(context.Background(), &kvstorepb.SetRequest{Key: "k", Value: "v"})
	wantCode(t, err, codes.DeadlineExceeded, "")
}

func TestBoundKeepsEarlierClientDeadline(t *testing.T) {
	svc := NewService(nil, Options{RequestTimeout: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	want, _ := ctx.Deadline()
	bctx, bcancel := svc.bound(ctx)
	defer bcancel()
	if got, _ := bctx.Deadline(); !got.Equal(want) {
		t.Fatalf("deadline %v; want the client's %v", got, want)
	}
	bctx, bcancel = svc.bound(context.Background())
	defer bcancel()
	if _, ok := bctx.Deadline(); !ok {
		t.Fatal("a request without a deadline got none")
	}
}
