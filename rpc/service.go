package rpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync/atomic"
	"time"

	"github.com/benbjohnson/clock"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"kvstore/actor"
	kvstorepb "kvstore/proto"
)

// Defaults for Options.
const (
	DefaultMaxKeyBytes   = 1 << 10
	DefaultMaxValueBytes = 1 << 20
)

// Options configures a Service.
type Options struct {
	// MaxKeyBytes and MaxValueBytes bound keys and values; 0 means the
	// default.
	MaxKeyBytes   int
	MaxValueBytes int
	// Clock stamps requests; TTLs count from it. Nil is the real clock.
	Clock clock.Clock
	// Logger receives handler failures; nil discards them.
	Logger *slog.Logger
	// RequestTimeout bounds every request on the server side, whatever
	// deadline the client set (or did not); 0 means none.
	RequestTimeout time.Duration
}

func (o Options) withDefaults() Options {
	if o.MaxKeyBytes <= 0 {
		o.MaxKeyBytes = DefaultMaxKeyBytes
	}
	if o.MaxValueBytes <= 0 {
		o.MaxValueBytes = DefaultMaxValueBytes
	}
	if o.Clock == nil {
		o.Clock = clock.New()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Service implements kvstorepb.KVStoreServer over an actor.
type Service struct {
	kvstorepb.UnimplementedKVStoreServer
	// actor is nil until recovery has built it: the server answers health
	// checks (NOT_SERVING) while the data is still loading.
	actor atomic.Pointer[actor.Actor]
	// replica, in cluster mode, is used instead of actor.
	replica atomic.Pointer[replicaBox]
	opts    Options
}

// NewService returns a Service that sends its commands to a. With a nil a,
// every call is Unavailable until Attach.
func NewService(a *actor.Actor, opts Options) *Service {
	s := &Service{opts: opts.withDefaults()}
	if a != nil {
		s.actor.Store(a)
	}
	return s
}

// Attach makes the service send its commands to a, once recovery is done.
func (s *Service) Attach(a *actor.Actor) { s.actor.Store(a) }

// errStarting answers requests that arrive while recovery runs.
var errStarting = status.Error(codes.Unavailable, "server is starting: recovery in progress")

// Set stores a value, with an expiry when ttl_seconds > 0.
func (s *Service) Set(ctx context.Context, req *kvstorepb.SetRequest) (*kvstorepb.SetResponse, error) {
	if err := s.checkKey(req.GetKey()); err != nil {
		return nil, err
	}
	if n := len(req.GetValue()); n > s.opts.MaxValueBytes {
		return nil, status.Errorf(codes.InvalidArgument,
			"value is %d bytes, over the %d-byte limit (--max-value-bytes)", n, s.opts.MaxValueBytes)
	}
	var deadline int64
	if ttl := req.GetTtlSeconds(); ttl != 0 {
		var err error
		if deadline, err = deadlineAfter(s.opts.Clock.Now().UnixNano(), ttl); err != nil {
			return nil, err
		}
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if b := s.replica.Load(); b != nil {
		err := b.r.Set(ctx, req.GetKey(), req.GetValue(), time.Duration(req.GetTtlSeconds())*time.Second)
		if isNotLeader(err) {
			return forward(ctx, b, func(c kvstorepb.KVStoreClient, ctx context.Context) (*kvstorepb.SetResponse, error) {
				return c.Set(ctx, req)
			})
		}
		if err != nil {
			return nil, s.fail("set", err)
		}
		return &kvstorepb.SetResponse{Success: true}, nil
	}
	a := s.actor.Load()
	if a == nil {
		return nil, errStarting
	}
	if err := a.Set(ctx, req.GetKey(), req.GetValue(), deadline); err != nil {
		return nil, s.fail("set", err)
	}
	return &kvstorepb.SetResponse{Success: true}, nil
}

// Get returns the value of a live key; a missing key is found=false.
func (s *Service) Get(ctx context.Context, req *kvstorepb.GetRequest) (*kvstorepb.GetResponse, error) {
	if err := s.checkKey(req.GetKey()); err != nil {
		return nil, err
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if b := s.replica.Load(); b != nil {
		v, ok, err := b.r.Get(ctx, req.GetKey(), staleRead(ctx))
		if isNotLeader(err) {
			return forward(ctx, b, func(c kvstorepb.KVStoreClient, ctx context.Context) (*kvstorepb.GetResponse, error) {
				return c.Get(ctx, req)
			})
		}
		if err != nil {
			return nil, s.fail("get", err)
		}
		return &kvstorepb.GetResponse{Found: ok, Value: v}, nil
	}
	a := s.actor.Load()
	if a == nil {
		return nil, errStarting
	}
	v, ok, err := a.Get(ctx, req.GetKey(), s.opts.Clock.Now().UnixNano())
	if err != nil {
		return nil, s.fail("get", err)
	}
	return &kvstorepb.GetResponse{Found: ok, Value: v}, nil
}

// Delete removes a key; deleting a missing key succeeds with deleted=false.
func (s *Service) Delete(ctx context.Context, req *kvstorepb.DeleteRequest) (*kvstorepb.DeleteResponse, error) {
	if err := s.checkKey(req.GetKey()); err != nil {
		return nil, err
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if b := s.replica.Load(); b != nil {
		found, err := b.r.Delete(ctx, req.GetKey())
		if isNotLeader(err) {
			return forward(ctx, b, func(c kvstorepb.KVStoreClient, ctx context.Context) (*kvstorepb.DeleteResponse, error) {
				return c.Delete(ctx, req)
			})
		}
		if err != nil {
			return nil, s.fail("delete", err)
		}
		return &kvstorepb.DeleteResponse{Success: true, Deleted: found}, nil
	}
	a := s.actor.Load()
	if a == nil {
		return nil, errStarting
	}
	found, err := a.Delete(ctx, req.GetKey(), s.opts.Clock.Now().UnixNano())
	if err != nil {
		return nil, s.fail("delete", err)
	}
	return &kvstorepb.DeleteResponse{Success: true, Deleted: found}, nil
}

// bound applies RequestTimeout to ctx, so no request holds the server
// longer than that, whatever its client asked for.
func (s *Service) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.opts.RequestTimeout <= 0 {
		return ctx, noCancel
	}
	// Most clients set a deadline of their own; when it is the earlier
	// one, a timer of ours would only cost an allocation per request.
	if d, ok := ctx.Deadline(); ok && time.Until(d) <= s.opts.RequestTimeout {
		return ctx, noCancel
	}
	return context.WithTimeout(ctx, s.opts.RequestTimeout)
}

func noCancel() {}

func (s *Service) checkKey(key string) error {
	if key == "" {
		return status.Error(codes.InvalidArgument, "key must not be empty")
	}
	if len(key) > s.opts.MaxKeyBytes {
		return status.Errorf(codes.InvalidArgument,
			"key is %d bytes, over the %d-byte limit (--max-key-bytes)", len(key), s.opts.MaxKeyBytes)
	}
	return nil
}

// deadlineAfter turns a TTL into an absolute Unix-nanosecond deadline,
// refusing TTLs that are negative or would overflow int64 time.
func deadlineAfter(now, ttlSeconds int64) (int64, error) {
	if ttlSeconds < 0 {
		return 0, status.Errorf(codes.InvalidArgument, "ttl_seconds must not be negative, got %d", ttlSeconds)
	}
	if maxTTL := (math.MaxInt64 - now) / 1e9; ttlSeconds > maxTTL {
		return 0, status.Errorf(codes.InvalidArgument,
			"ttl_seconds %d is too large: the expiry time would overflow (at most %d)", ttlSeconds, maxTTL)
	}
	return now + ttlSeconds*1e9, nil
}

// fail maps an actor error to a gRPC status.
func (s *Service) fail(op string, err error) error {
	switch {
	case errors.Is(err, actor.ErrStopped):
		return status.Error(codes.Unavailable, "server is shutting down")
	case errors.Is(err, actor.ErrTooLarge):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, actor.ErrMemoryLimit):
		return status.Errorf(codes.ResourceExhausted, "%v; delete keys or raise --max-memory", err)
	case errors.Is(err, actor.ErrStorage):
		return status.Errorf(codes.Unavailable, "writes are refused after a storage failure: %v", err)
	case errors.Is(err, actor.ErrOutcomeUnknown) && s.replica.Load() != nil:
		// Proposed, and the leadership lost before it was known to be
		// committed: the next leader may or may not commit it.
		return status.Errorf(codes.Unavailable, "write outcome unknown: leadership was lost before it was known to be committed; read the key to know: %v", err)
	case errors.Is(err, actor.ErrNoLeader), errors.Is(err, actor.ErrNotLeader):
		return status.Errorf(codes.Unavailable, "no leader: %v", err)
	case errors.Is(err, actor.ErrOutcomeUnknown):
		// Possibly on disk: the caller must read back to know.
		return status.Errorf(codes.Unavailable, "write outcome unknown (it may be there after a restart), writes are refused from now on: %v", err)
	case errors.Is(err, actor.ErrNotPersisted):
		// Not acknowledged and not in the log: gone after a restart,
		// though reads show it until then. The actor refuses writes
		// from now on.
		return status.Errorf(codes.Unavailable, "write not persisted, writes are refused from now on: %v", err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	}
	s.opts.Logger.Error("request failed", "op", op, "err", err)
	return status.Error(codes.Internal, fmt.Sprintf("%s failed: %v", op, err))
}
