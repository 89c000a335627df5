package server

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2"
)

// portMux serves gRPC and HTTP (REST, health, metrics, pprof) on one
// listener, as etcd does on 2379, so the default set-up needs one port.
// Each accepted connection is read just far enough to tell its protocol,
// then handed, with the bytes read, to the front that speaks it:
//
//   - plaintext: a connection that opens with the HTTP/2 preface is gRPC,
//     any other is HTTP/1.x (REST over HTTP/2 without TLS, "prior
//     knowledge", is rare and needs --http-listen);
//   - TLS: the mux does the handshake, and ALPN decides (see
//     rpc.ServerTLS.SharedPortConfig): h2 is gRPC, http/1.1 or nothing
//     is HTTP.
//
// The fronts' own limits apply to what they are handed; --max-connections
// bounds the shared listener, so both fronts draw on one pool of slots.
// A connection that does not show its protocol within timeout (or finish
// its TLS handshake) is closed: sniffing happens before either front's
// timeouts start.
type portMux struct {
	lis     net.Listener
	tls     *tls.Config // nil: plaintext
	timeout time.Duration
	log     *slog.Logger
	// errorLog takes failed TLS handshakes in net/http's words, so they
	// are logged, and rate-limited, as the HTTP server's own are (see
	// rpc.NewHTTPErrorLog).
	errorLog *log.Logger

	grpc, http *muxListener

	mu       sync.Mutex
	pending  map[net.Conn]struct{} // connections being sniffed
	closed   bool
	sniffers sync.WaitGroup
}

// muxHandshakeTimeout bounds the time from accept until a connection has
// shown its protocol, TLS handshake included.
const muxHandshakeTimeout = 10 * time.Second

// newPortMux returns a mux over lis; nothing is accepted until serve.
func newPortMux(lis net.Listener, tlsConfig *tls.Config, logger *slog.Logger, errorLog *log.Logger) *portMux {
	m := &portMux{lis: lis, tls: tlsConfig, timeout: muxHandshakeTimeout, log: logger, errorLog: errorLog, pending: map[net.Conn]struct{}{}}
	m.grpc = newMuxListener(lis.Addr())
	m.http = newMuxListener(lis.Addr())
	return m
}

// Addr is the shared listener's address.
func (m *portMux) Addr() net.Addr { return m.lis.Addr() }

// serve accepts until close, or until the listener fails: then both
// fronts' listeners fail with the same error, and so does serve. It
// returns nil after close.
func (m *portMux) serve() error {
	var delay time.Duration
	for {
		c, err := m.lis.Accept()
		if err != nil {
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() {
				// Out of file descriptors and the like: wait, as net/http
				// and grpc-go do, rather than spin.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				m.log.Warn("accept failed; retrying", "err", err, "in", delay)
				time.Sleep(delay)
				continue
			}
			m.mu.Lock()
			closed := m.closed
			m.mu.Unlock()
			if closed {
				err = nil
			}
			m.stop(err)
			return err
		}
		delay = 0
		if !m.track(c) {
			c.Close()
			continue
		}
		m.sniffers.Add(1)
		go m.route(c)
	}
}

// track records c as being sniffed, so close can cut it short; false once
// closed.
func (m *portMux) track(c net.Conn) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false
	}
	m.pending[c] = struct{}{}
	return true
}

func (m *portMux) untrack(c net.Conn) {
	m.mu.Lock()
	delete(m.pending, c)
	m.mu.Unlock()
}

// route tells c's protocol and hands it to its front.
func (m *portMux) route(c net.Conn) {
	defer m.sniffers.Done()
	defer m.untrack(c)
	c.SetDeadline(time.Now().Add(m.timeout))
	conn, grpc, err := m.sniff(c)
	if err != nil {
		m.log.Debug("connection closed before it showed its protocol", "remote", c.RemoteAddr().String(), "err", err)
		c.Close()
		return
	}
	// The fronts set their own deadlines from here on.
	c.SetDeadline(time.Time{})
	to := m.http
	if grpc {
		to = m.grpc
	}
	to.deliver(conn)
}

// sniffBytes is how much of the client preface every HTTP/2 connection
// without TLS begins with (RFC 9113 §3.4) tells it from HTTP/1: no HTTP/1
// request begins with "PRI ".
const sniffBytes = len("PRI ")

// sniff returns the connection to hand on (c, after its TLS handshake or
// with the bytes read put back) and whether it is gRPC.
func (m *portMux) sniff(c net.Conn) (net.Conn, bool, error) {
	if m.tls != nil {
		tc := tls.Server(c, m.tls)
		ctx, cancel := context.WithTimeout(context.Background(), m.timeout)
		defer cancel()
		if err := tc.HandshakeContext(ctx); err != nil {
			// What net/http's ServeTLS does: plain HTTP gets a 400 that
			// says what is wrong, anything else a log line.
			var re tls.RecordHeaderError
			if errors.As(err, &re) && re.Conn != nil && looksLikeHTTP(re.RecordHeader) {
				io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
			} else {
				m.errorLog.Printf("http: TLS handshake error from %s: %v", c.RemoteAddr(), err)
			}
			return nil, false, err
		}
		return tc, tc.ConnectionState().NegotiatedProtocol == "h2", nil
	}
	buf := make([]byte, sniffBytes)
	n := 0
	for n < sniffBytes && strings.HasPrefix(http2.ClientPreface, string(buf[:n])) {
		k, err := c.Read(buf[n:])
		n += k
		if err != nil && n < sniffBytes {
			return nil, false, err
		}
	}
	return &prefixConn{Conn: c, prefix: buf[:n]}, strings.HasPrefix(http2.ClientPreface, string(buf[:n])), nil
}

// looksLikeHTTP reports whether the first bytes of what was meant to be a
// TLS record begin an HTTP/1 request.
func looksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO", "DELET", "PATCH":
		return true
	}
	return false
}

// close stops accepting, closes the connections still being sniffed and
// waits for their goroutines. The fronts' listeners are the fronts' to
// close (their Shutdown does); connections delivered to a closed one are
// closed.
func (m *portMux) close() {
	m.mu.Lock()
	m.closed = true
	for c := range m.pending {
		c.Close()
	}
	m.mu.Unlock()
	m.lis.Close()
	m.sniffers.Wait()
}

// stop fails both fronts' listeners with err (net.ErrClosed when nil).
func (m *portMux) stop(err error) {
	m.grpc.fail(err)
	m.http.fail(err)
}

// prefixConn is a connection whose first bytes were read while sniffing:
// Read returns them first.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// muxListener is one front's side of a portMux: a net.Listener whose
// Accept returns the connections the mux routed to it.
type muxListener struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{} // closed by Close or fail

	once sync.Once
	err  error // Accept's error once done; set before done is closed
}

func newMuxListener(addr net.Addr) *muxListener {
	return &muxListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

// deliver hands c to Accept, or closes it if the listener is closed.
func (l *muxListener) deliver(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *muxListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, l.err
	}
}

// fail makes Accept return err from now on (net.ErrClosed when nil).
func (l *muxListener) fail(err error) {
	l.once.Do(func() {
		if err == nil {
			err = net.ErrClosed
		}
		l.err = err
		close(l.done)
	})
}

// Close stops Accept; the mux and its other front go on.
func (l *muxListener) Close() error {
	l.fail(nil)
	return nil
}

func (l *muxListener) Addr() net.Addr { return l.addr }
