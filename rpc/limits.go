package rpc

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/benbjohnson/clock"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	kvstorepb "kvstore/proto"
)

// Limits that keep clients which send without reading, hold streams open
// or never authenticate from growing the server's memory or holding its
// connection slots. README's Security section states the bounds they give.
const (
	// DefaultMaxConnResponseBytes bounds the response bytes one connection
	// may have queued in the server and not yet written to its socket
	// (a client that does not read stops the writes at its flow-control
	// window). A Get that would pass it waits.
	DefaultMaxConnResponseBytes = 4 << 20
	// DefaultMaxResponseBytes is the same bound over all connections.
	DefaultMaxResponseBytes = 256 << 20
	// DefaultMaxHealthWatchers bounds concurrent grpc.health.v1 Watch
	// streams over all connections: they need no token.
	DefaultMaxHealthWatchers = 1024
	// DefaultUnauthenticatedTimeout is how long a connection may stay open,
	// with token auth on, before one of its calls presents a valid token.
	DefaultUnauthenticatedTimeout = 10 * time.Second
)

// serverConn is a connection accepted by Server.Serve. Its RemoteAddr
// carries it to the calls on it (grpc puts that address in each call's
// peer.Peer), so a call finds its connection with one type assertion and
// no stats handler, which would cost allocations on every RPC.
type serverConn struct {
	net.Conn
	raddr *connAddr
	s     *Server

	authed    atomic.Bool
	deadline  *clock.Timer // nil unless UnauthenticatedTimeout is set
	closeOnce sync.Once

	// mu guards the response bytes held for this connection; see
	// responseBudget.
	mu      sync.Mutex
	held    int64
	closed  bool
	changed chan struct{} // closed when held shrinks; nil if nobody waits
}

// connAddr is the remote address of a serverConn.
type connAddr struct {
	net.Addr
	c *serverConn
}

func (c *serverConn) RemoteAddr() net.Addr { return c.raddr }

// Close closes the connection and gives back the response bytes it
// held: once grpc has closed it, its queued responses are garbage.
func (c *serverConn) Close() error {
	c.closeOnce.Do(func() {
		if c.deadline != nil {
			c.deadline.Stop()
		}
		c.s.budget.closeConn(c)
	})
	return c.Conn.Close()
}

// authenticated records that a call on c presented a valid token, which
// lifts c's UnauthenticatedTimeout.
func (c *serverConn) authenticated() {
	if !c.authed.Load() && c.authed.CompareAndSwap(false, true) && c.deadline != nil {
		c.deadline.Stop()
	}
}

// connFromContext returns the connection a call came on, nil for a call
// that did not come through Server.Serve.
func connFromContext(ctx context.Context) *serverConn {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil
	}
	if a, ok := p.Addr.(*connAddr); ok {
		return a.c
	}
	return nil
}

// markAuthenticated is called by Auth for a call carrying a valid token.
func markAuthenticated(ctx context.Context) {
	if c := connFromContext(ctx); c != nil {
		c.authenticated()
	}
}

// connListener wraps each accepted connection in a serverConn.
type connListener struct {
	net.Listener
	s *Server
}

func (l connListener) Accept() (net.Conn, error) {
	raw, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	c := &serverConn{Conn: raw, s: l.s}
	c.raddr = &connAddr{Addr: raw.RemoteAddr(), c: c}
	if d := l.s.authTimeout; d > 0 {
		c.deadline = l.s.clock.AfterFunc(d, func() {
			if !c.authed.Load() {
				l.s.logger.Debug("closing connection: no valid token", "remote", raw.RemoteAddr().String(), "after", d)
				c.Close()
			}
		})
	}
	return c, nil
}

// responseBudget bounds the bytes of marshalled responses that grpc has
// queued and not yet written, per connection and in all. grpc-go queues
// a whole response as soon as the handler returns and writes it as the
// client's flow-control window allows, so a client that sends Gets and
// never reads would otherwise make the server hold every value it asked
// for. A response is counted from the end of its handler until grpc has
// written its last byte, or dropped it with its stream or connection.
// Responses below grpc's buffer pooling threshold (1 KiB) are not
// counted: MaxConcurrentStreams bounds them.
type responseBudget struct {
	connLimit, limit int64

	mu      sync.Mutex
	held    int64
	changed chan struct{}

	// onWait, when set (tests), is called when a response starts waiting.
	onWait func()
}

// notify wakes everyone waiting on *ch.
func notify(ch *chan struct{}) {
	if *ch != nil {
		close(*ch)
		*ch = nil
	}
}

func waitOn(ch *chan struct{}) <-chan struct{} {
	if *ch == nil {
		*ch = make(chan struct{})
	}
	return *ch
}

// errConnClosed answers a call whose connection is gone.
var errConnClosed = status.Error(codes.Canceled, "connection closed")

// take reserves n bytes on c and in all, waiting while either would go
// over its limit. A connection, or the server, that holds nothing may
// always take one response, so a value larger than a limit can still be
// read.
func (b *responseBudget) take(ctx context.Context, c *serverConn, n int64) error {
	waited := false
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return errConnClosed
		}
		b.mu.Lock()
		if (c.held == 0 || c.held+n <= b.connLimit) && (b.held == 0 || b.held+n <= b.limit) {
			c.held += n
			b.held += n
			b.mu.Unlock()
			c.mu.Unlock()
			return nil
		}
		connc, allc := waitOn(&c.changed), waitOn(&b.changed)
		b.mu.Unlock()
		c.mu.Unlock()
		if !waited && b.onWait != nil {
			b.onWait()
		}
		waited = true
		select {
		case <-connc:
		case <-allc:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// give returns n bytes taken on c.
func (b *responseBudget) give(c *serverConn, n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held -= n
	notify(&c.changed)
	if !c.closed { // else closeConn gave them back already
		b.mu.Lock()
		b.held -= n
		notify(&b.changed)
		b.mu.Unlock()
	}
}

// closeConn gives back everything c holds; later gives on c count only
// against c.
func (b *responseBudget) closeConn(c *serverConn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	notify(&c.changed)
	b.mu.Lock()
	b.held -= c.held
	notify(&b.changed)
	b.mu.Unlock()
}

// heldResponse is a response whose bytes are counted by the budget until
// grpc frees the buffer budgetCodec marshalled it into. It embeds the
// message, so anything else that sees it (stats, binary logs) sees a
// proto.Message with the same content.
type heldResponse struct {
	proto.Message
	size     int
	c        *serverConn
	budget   *responseBudget
	released atomic.Bool
}

func (r *heldResponse) release() {
	if r.released.CompareAndSwap(false, true) {
		r.budget.give(r.c, int64(r.size))
	}
}

// Get and Put make heldResponse the mem.BufferPool of its own buffer:
// grpc calls Put once the buffer is freed, whether written or dropped.
func (r *heldResponse) Get(length int) *[]byte { return mem.DefaultBufferPool().Get(length) }
func (r *heldResponse) Put(buf *[]byte) {
	mem.DefaultBufferPool().Put(buf)
	r.release()
}

// budgetCodec is grpc's proto codec, except that a heldResponse is
// marshalled into a buffer whose release gives its bytes back.
type budgetCodec struct{ proto encoding.CodecV2 }

func newBudgetCodec() budgetCodec { return budgetCodec{encoding.GetCodecV2(protocodec.Name)} }

func (c budgetCodec) Name() string { return protocodec.Name }

func (c budgetCodec) Unmarshal(data mem.BufferSlice, v any) error { return c.proto.Unmarshal(data, v) }

func (c budgetCodec) Marshal(v any) (mem.BufferSlice, error) {
	r, ok := v.(*heldResponse)
	if !ok {
		return c.proto.Marshal(v)
	}
	buf := r.Get(r.size)
	// The size was computed by holdResponse and the message has not
	// changed since.
	b, err := proto.MarshalOptions{UseCachedSize: true}.MarshalAppend((*buf)[:0], r.Message)
	if err != nil {
		r.Put(buf)
		return nil, err
	}
	*buf = b
	if mem.IsBelowBufferPoolingThreshold(cap(b)) { // never for a held response; be safe
		r.release()
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	return mem.BufferSlice{mem.NewBuffer(buf, r)}, nil
}

// holdResponse counts a large response against the budget, waiting (at
// most the request timeout) while its connection or the server is over
// its limit, and returns what grpc should send.
func (s *Server) holdResponse(ctx context.Context, resp any) (any, error) {
	var n int
	switch m := resp.(type) {
	case *kvstorepb.GetResponse:
		// The hot path: most values are small, and the codec computes
		// the size again.
		if mem.IsBelowBufferPoolingThreshold(len(m.GetValue()) + 16) {
			return resp, nil
		}
		n = proto.Size(m)
	case proto.Message:
		n = proto.Size(m)
	default:
		return resp, nil
	}
	if mem.IsBelowBufferPoolingThreshold(n) {
		return resp, nil
	}
	c := connFromContext(ctx)
	if c == nil {
		return resp, nil
	}
	bctx, cancel := s.svc.bound(ctx)
	defer cancel()
	if err := s.budget.take(bctx, c, int64(n)); err != nil {
		switch {
		case err == errConnClosed:
			return nil, err
		case ctx.Err() != nil:
			return nil, status.FromContextError(ctx.Err()).Err()
		}
		return nil, status.Errorf(codes.ResourceExhausted,
			"response of %d bytes not sent within the request timeout: responses waiting for slow clients to read them are at the limit (%d bytes per connection, %d in all)",
			n, s.budget.connLimit, s.budget.limit)
	}
	return &heldResponse{Message: resp.(proto.Message), size: n, c: c, budget: &s.budget}, nil
}

// limitedHealth is the health service with a bound on concurrent Watch
// streams, which need no token.
type limitedHealth struct {
	*health.Server
	watchers chan struct{}
}

func (h limitedHealth) Watch(req *healthpb.HealthCheckRequest, stream healthpb.Health_WatchServer) error {
	select {
	case h.watchers <- struct{}{}:
	default:
		return status.Errorf(codes.ResourceExhausted,
			"too many health Watch streams (%d); use Check, or retry later", cap(h.watchers))
	}
	defer func() { <-h.watchers }()
	return h.Server.Watch(req, stream)
}
