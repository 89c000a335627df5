// Package redisfront serves kvstore over the Redis protocol (RESP2 and
// RESP3), so that redis-cli, redis-benchmark and Redis client libraries
// work unmodified. Every command becomes commands of the actor's
// deterministic machine: read-modify-writes (INCR, SET NX GET, EXPIRE
// GT...) are one machine command each, applied atomically on the owner,
// and the commands of one read of a connection (a pipeline) go to the
// actor as one independent Request, answered in one write.
package redisfront

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/benbjohnson/clock"

	"kvstore/rpc"
)

// Config configures a Server.
type Config struct {
	Backend Backend
	// Auth, when set, makes clients AUTH with a token (AUTH TOKEN or AUTH
	// default TOKEN) before anything else; the token's role decides the
	// commands it may run. nil: no authentication, every command allowed.
	Auth *rpc.Auth
	// TLS, when set, serves TLS only.
	TLS *tls.Config
	// MaxKeyBytes and MaxValueBytes are the front's limits (the machine
	// enforces the same ones); a bulk string longer than both is a
	// protocol error that closes the connection.
	MaxKeyBytes, MaxValueBytes int
	// MaxMemory is reported by INFO and CONFIG GET maxmemory (the machine
	// enforces it).
	MaxMemory int64
	// Fsync is the log's policy ("always", "everysec", "no"), for CONFIG
	// GET appendfsync and INFO persistence; "" reports appendonly no.
	Fsync string
	// RequestTimeout bounds one batch's wait for the actor (a batch
	// gets between half of it and all of it: see batchContext).
	RequestTimeout time.Duration
	// WriteTimeout bounds one write of replies: a client that reads
	// nothing for that long (between half of it and all of it) is
	// disconnected, so it cannot hold a slot and its replies for ever.
	// 0 is DefaultWriteTimeout.
	WriteTimeout time.Duration
	// AuthTimeout bounds how long a connection may stay unauthenticated
	// when Auth is set; 0 is DefaultAuthTimeout.
	AuthTimeout time.Duration
	// Clock gives TIME and the connections' ages; nil is the real clock.
	Clock clock.Clock
	Log   *slog.Logger
	// Version is kvstore's version, for INFO server.
	Version string
}

// Defaults of Config.
const (
	DefaultWriteTimeout = 60 * time.Second
	DefaultAuthTimeout  = 10 * time.Second
)

// Server is the Redis-protocol front.
type Server struct {
	cfg   Config
	clock clock.Clock
	log   *slog.Logger
	start time.Time

	nextID atomic.Int64
	// Counters for INFO stats.
	connectionsReceived atomic.Int64
	commandsProcessed   atomic.Int64

	mu       sync.Mutex
	lis      []net.Listener
	conns    map[*conn]struct{}
	closing  bool
	shutdown chan struct{} // closed by Shutdown
	wg       sync.WaitGroup
}

// NewServer returns a server that serves cfg.Backend once Serve is called.
func NewServer(cfg Config) *Server {
	if cfg.Clock == nil {
		cfg.Clock = clock.New()
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.AuthTimeout <= 0 {
		cfg.AuthTimeout = DefaultAuthTimeout
	}
	return &Server{cfg: cfg, clock: cfg.Clock, log: cfg.Log, start: cfg.Clock.Now(),
		conns: map[*conn]struct{}{}, shutdown: make(chan struct{})}
}

// ErrServerClosed is Serve's return after Shutdown.
var ErrServerClosed = errors.New("redisfront: server closed")

// Serve accepts connections on lis until Shutdown, serving each on a
// goroutine of its own. Bound the connections with the listener
// (netutil.LimitListener).
func (s *Server) Serve(lis net.Listener) error {
	if s.cfg.TLS != nil {
		lis = tls.NewListener(lis, s.cfg.TLS)
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		lis.Close()
		return ErrServerClosed
	}
	s.lis = append(s.lis, lis)
	s.mu.Unlock()
	for {
		nc, err := lis.Accept()
		if err != nil {
			select {
			case <-s.shutdown:
				return ErrServerClosed
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return err
		}
		s.connectionsReceived.Add(1)
		c := newConn(s, nc)
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			nc.Close()
			return ErrServerClosed
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			c.serve()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// Shutdown stops accepting, lets every connection finish the batch it
// is running (its replies written), closes them, and waits for them
// until ctx ends, then closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closing {
		s.closing = true
		close(s.shutdown)
		for _, l := range s.lis {
			l.Close()
		}
	}
	for c := range s.conns {
		c.wake()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.nc.Close()
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}

// clients is the number of open connections.
func (s *Server) clients() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// clientList is CLIENT LIST's text.
func (s *Server) clientList() []byte {
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	var b []byte
	for _, c := range sortByID(conns) {
		b = c.appendInfo(b)
		b = append(b, '\n')
	}
	return b
}
