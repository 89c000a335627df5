package rpc

import (
	"cmp"
	"context"
	"crypto/tls"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"log/slog"
	"net"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/benbjohnson/clock"

	kvstorepb "kvstore/proto"
)

// streamWorkers is the number of goroutines kept to run RPCs. Without
// them grpc-go starts a goroutine per RPC whose stack then grows through
// the handler on every call (morestack was ~10% of server CPU under load);
// with them the stacks stay grown. Handlers block while their write is
// fsynced, so there are enough for a few hundred concurrent calls; past
// that grpc-go falls back to a goroutine per RPC.
const streamWorkers = 256

// Transport limits that keep one slow, silent or greedy client from
// pinning the server's resources. Each is per connection; the number of
// connections is bounded by the listener (--max-connections).
const (
	// maxStreams bounds concurrent RPCs on one connection (advertised as
	// SETTINGS_MAX_CONCURRENT_STREAMS; a stream past it is refused with
	// RST_STREAM REFUSED_STREAM). A stream holds its headers and a
	// goroutine until its call ends, before any token is checked.
	maxStreams = 100
	// maxHeaderListBytes bounds one HEADERS block once decoded, as HTTP/2
	// counts it (name + value + 32 per field; advertised as
	// SETTINGS_MAX_HEADER_LIST_SIZE): gRPC metadata is a few hundred
	// bytes, while HPACK lets a client name a 4 KB header again in one
	// byte. A larger block resets its stream.
	maxHeaderListBytes = 16 << 10
	// handshakeTimeout bounds a new connection's TLS/HTTP2 handshake.
	handshakeTimeout = 10 * time.Second
)

// Keepalive: pings more often than every 10 s are abuse and close the
// connection; a connection idle for 15 minutes is closed; one whose peer
// stops answering pings is dropped after 2 minutes + 20 s.
var (
	keepaliveEnforcement = keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}
	keepaliveParams      = keepalive.ServerParameters{MaxConnectionIdle: 15 * time.Minute, Time: 2 * time.Minute, Timeout: 20 * time.Second}
)

// Server is the gRPC server: the KVStore service, grpc.health.v1.Health and
// server reflection (so grpcurl and grpc-health-probe work unmodified).
// Health reports NOT_SERVING until SetServing is called.
//
// Health has two conditions: the service "" is SERVING while the server
// answers requests (reads at least), and kvstorepb's "kvstore.v1.KVStore"
// while it also accepts writes. After RefuseWrites only "" stays SERVING.
type Server struct {
	grpc   *grpc.Server
	health *health.Server
	svc    *Service
	logger *slog.Logger
	clock  clock.Clock
	// authTimeout is ServerOptions.UnauthenticatedTimeout.
	authTimeout time.Duration
	budget      responseBudget

	mu sync.Mutex // orders SetServing and RefuseWrites
	// serving and refused mirror the health status for fronts that are
	// not gRPC (the HTTP /readyz), so both always agree.
	serving, refused atomic.Bool
}

// ServerOptions configures NewServer. The zero value serves plaintext with
// only panic recovery.
type ServerOptions struct {
	// Unary and Stream interceptors run in order, outside the panic
	// recovery: metrics first, so refused calls are counted, then auth.
	Unary  []grpc.UnaryServerInterceptor
	Stream []grpc.StreamServerInterceptor
	// TLS, when set, serves gRPC over TLS (see ServerTLS.Config).
	TLS *tls.Config
	// TLSAccepted says the listener does the TLS handshakes itself and
	// accepts *tls.Conn (see ServerTLS.SharedPortConfig): gRPC serves them
	// as TLS connections, with their certificates as each call's
	// credentials.TLSInfo, and refuses any other. TLS must be nil.
	TLSAccepted bool
	// UnauthenticatedTimeout, when positive, closes a connection on which
	// no call has presented a valid token (see Auth) this long after it
	// was accepted, so that connections which never authenticate do not
	// keep a --max-connections slot. Set it when serving with token auth
	// (the server uses DefaultUnauthenticatedTimeout); calls that need no
	// token (health) do not count. Time is read from the Service's Clock.
	UnauthenticatedTimeout time.Duration
	// MaxConnResponseBytes and MaxResponseBytes bound the response bytes
	// queued for clients that do not read them, per connection and in
	// all (see responseBudget); 0 means DefaultMaxConnResponseBytes and
	// DefaultMaxResponseBytes.
	MaxConnResponseBytes, MaxResponseBytes int64
	// MaxHealthWatchers bounds concurrent health Watch streams in all; 0
	// means DefaultMaxHealthWatchers.
	MaxHealthWatchers int
	// Admin, when non-nil, is registered as kvstore.v1.Admin.
	Admin *Admin

	// onResponseWait, when set (tests), is called when a response starts
	// waiting for the response budget.
	onResponseWait func()
}

// NewServer returns a Server for svc. Its largest accepted message fits the
// biggest valid Set, so a value just over the limit gets a clear
// InvalidArgument from the service rather than a transport error.
func NewServer(svc *Service, opts ServerOptions) *Server {
	s := &Server{
		health:      health.NewServer(),
		svc:         svc,
		logger:      svc.opts.Logger,
		clock:       svc.opts.Clock,
		authTimeout: opts.UnauthenticatedTimeout,
		budget: responseBudget{
			connLimit: cmp.Or(opts.MaxConnResponseBytes, DefaultMaxConnResponseBytes),
			limit:     cmp.Or(opts.MaxResponseBytes, DefaultMaxResponseBytes),
			onWait:    opts.onResponseWait,
		},
	}
	maxMsg := svc.opts.MaxKeyBytes + svc.opts.MaxValueBytes + 1024
	grpcOpts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(maxMsg),
		grpc.NumStreamWorkers(streamWorkers),
		grpc.MaxConcurrentStreams(maxStreams),
		grpc.MaxHeaderListSize(maxHeaderListBytes),
		grpc.ForceServerCodecV2(newBudgetCodec()),
		grpc.ConnectionTimeout(handshakeTimeout),
		grpc.KeepaliveEnforcementPolicy(keepaliveEnforcement),
		grpc.KeepaliveParams(keepaliveParams),
		grpc.ChainUnaryInterceptor(append(slices.Clone(opts.Unary), s.innermost)...),
		grpc.ChainStreamInterceptor(opts.Stream...),
	}
	switch {
	case opts.TLS != nil:
		grpcOpts = append(grpcOpts, grpc.Creds(credentials.NewTLS(opts.TLS)))
	case opts.TLSAccepted:
		grpcOpts = append(grpcOpts, grpc.Creds(acceptedTLS{}))
	}
	s.grpc = grpc.NewServer(grpcOpts...)
	kvstorepb.RegisterKVStoreServer(s.grpc, svc)
	if opts.Admin != nil {
		kvstorepb.RegisterAdminServer(s.grpc, opts.Admin)
	}
	healthpb.RegisterHealthServer(s.grpc, limitedHealth{s.health, make(chan struct{}, cmp.Or(opts.MaxHealthWatchers, DefaultMaxHealthWatchers))})
	reflection.Register(s.grpc)
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	s.health.SetServingStatus(kvstorepb.KVStore_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_NOT_SERVING)
	return s
}

// SetServing marks the server healthy: call it once recovery is complete.
// The KVStore service stays NOT_SERVING if RefuseWrites came first.
func (s *Server) SetServing() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.serving.Store(true)
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	if !s.refused.Load() {
		s.health.SetServingStatus(kvstorepb.KVStore_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	}
}

// SetNotServing marks the server NOT_SERVING until the next SetServing:
// a cluster node that knows no leader, and could only answer stale
// reads.
func (s *Server) SetNotServing() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.serving.Store(false)
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	s.health.SetServingStatus(kvstorepb.KVStore_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_NOT_SERVING)
}

// RefuseWrites marks the KVStore service NOT_SERVING for good, and Ready
// false, while "" keeps its status: call it when the server can no longer
// accept writes (its log failed) but still answers reads. It does not
// block and is safe from any goroutine.
func (s *Server) RefuseWrites() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refused.Store(true)
	s.health.SetServingStatus(kvstorepb.KVStore_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_NOT_SERVING)
}

// Ready reports what the health service reports for the KVStore service:
// SERVING once recovery is done, until shutdown starts or writes are
// refused.
func (s *Server) Ready() bool { return s.serving.Load() && !s.refused.Load() }

// Serve accepts connections on lis until Shutdown.
func (s *Server) Serve(lis net.Listener) error { return s.grpc.Serve(connListener{lis, s}) }

// Shutdown marks the server NOT_SERVING, stops accepting connections and
// waits for in-flight RPCs to finish; when ctx ends first (the grace
// period), it cancels the rest. It returns once the server has stopped.
func (s *Server) Shutdown(ctx context.Context) {
	s.serving.Store(false)
	s.health.Shutdown()
	stopped := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-ctx.Done():
		s.logger.Warn("shutdown grace period over, cancelling in-flight RPCs")
		s.grpc.Stop()
		<-stopped
	}
}

// Stop closes every connection and cancels in-flight RPCs at once: for a
// server that fails to start.
func (s *Server) Stop() {
	s.serving.Store(false)
	s.health.Shutdown()
	s.grpc.Stop()
}

// innermost is the last unary interceptor: it recovers panics and counts
// large responses against the response budget (one interceptor for both:
// grpc-go allocates a closure per call for each one in a chain).
func (s *Server) innermost(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := s.recoverPanic(ctx, req, info, handler)
	if err != nil || resp == nil {
		return resp, err
	}
	return s.holdResponse(ctx, resp)
}

// recoverPanic turns a handler panic into Internal and logs it with its
// stack, so one bad request cannot take the server down.
func (s *Server) recoverPanic(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.logger.Error("panic in handler", "method", info.FullMethod, "panic", p, "stack", string(debug.Stack()))
			resp, err = nil, status.Error(codes.Internal, "internal error")
		}
	}()
	return handler(ctx, req)
}
