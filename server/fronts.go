package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/benbjohnson/clock"
	"golang.org/x/net/netutil"
	"google.golang.org/grpc"

	"kvstore/actor"
	"kvstore/redisfront"
	"kvstore/rpc"
)

// fronts are the server's listeners: gRPC and HTTP (REST, health,
// metrics, pprof) on the --listen port, told apart per connection (see
// portMux), and HTTP alone on --http-listen when it is set. They serve
// from before recovery, so health checks get NOT_SERVING / 503 answers
// while the data loads, and they drain together at shutdown.
type fronts struct {
	grpc    *rpc.Server
	http    *http.Server
	mux     *portMux     // --listen
	httpLis net.Listener // --http-listen; nil without
	// The Redis front on --resp-listen; nil without.
	resp        *redisfront.Server
	respLis     net.Listener
	respBackend *redisfront.ActorBackend
	tls         bool       // TLS on every port
	errc        chan error // each Serve's return
	running     int
	stopOnce    sync.Once
}

// security is what guards both fronts: TLS (nil: plaintext) and token
// auth (nil: off). Both reload on SIGHUP.
type security struct {
	tls  *rpc.ServerTLS
	auth *rpc.Auth
}

// loadSecurity reads the TLS files and the token file the config names.
func loadSecurity(c *Config) (security, error) {
	var sec security
	var err error
	if sec.tls, err = rpc.NewServerTLS(c.TLSCert, c.TLSKey, c.TLSClientCA); err != nil {
		return sec, err
	}
	if c.AuthFile != "" {
		if sec.auth, err = rpc.LoadAuth(c.AuthFile); err != nil {
			return sec, err
		}
	}
	return sec, nil
}

// reload re-reads the certificates and the tokens; a file that fails
// keeps the old one in force.
func (sec security) reload(log *slog.Logger) {
	if sec.tls == nil && sec.auth == nil {
		log.Info("reload: nothing to reload (no --tls-cert, no --auth-file)")
		return
	}
	if sec.tls != nil {
		if err := sec.tls.Reload(); err != nil {
			log.Error("TLS reload failed; keeping the old certificate", "err", err)
		} else {
			cert := sec.tls.Certificate()
			log.Info("TLS certificate reloaded", "serial", cert.SerialNumber.String(), "not_after", cert.NotAfter)
		}
	}
	if sec.auth != nil {
		if err := sec.auth.Reload(); err != nil {
			log.Error("auth file reload failed; keeping the old tokens", "err", err)
		} else {
			log.Info("auth file reloaded", "tokens", sec.auth.Tokens())
		}
	}
}

// listenFronts claims both addresses; nothing is served until serve.
// net/http's own errors (failed TLS handshakes) go to log, rate-limited on
// clk.
func listenFronts(c *Config, svc *rpc.Service, admin *rpc.Admin, metrics *rpc.Metrics, sec security, log *slog.Logger, clk clock.Clock) (*fronts, error) {
	// Metrics first, so calls auth refuses are counted too. Without
	// tokens there is nothing to check: grpc-go allocates a closure per
	// call for every interceptor in a chain, so none is added.
	opts := rpc.ServerOptions{
		Unary:  []grpc.UnaryServerInterceptor{metrics.UnaryInterceptor()},
		Stream: []grpc.StreamServerInterceptor{metrics.StreamInterceptor()},
		// The mux does the handshakes of the shared port.
		TLSAccepted: sec.tls != nil,
		Admin:       admin,
	}
	if sec.auth != nil {
		opts.Unary = append(opts.Unary, sec.auth.UnaryInterceptor())
		opts.Stream = append(opts.Stream, sec.auth.StreamInterceptor())
		opts.UnauthenticatedTimeout = rpc.DefaultUnauthenticatedTimeout
	}
	f := &fronts{grpc: rpc.NewServer(svc, opts), tls: sec.tls != nil}
	lis, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", c.Listen, err)
	}
	handler := rpc.NewHTTPHandler(svc, rpc.HTTPOptions{
		Ready:      f.grpc.Ready,
		Pprof:      c.Pprof,
		Metrics:    metrics.Handler(),
		Instrument: metrics.HTTP,
		Admin:      admin,
	})
	f.http = newHTTPServer(sec.auth.HTTP(handler, c.MetricsOpen), sec.tls.Config(), int(c.MaxKeyBytes), defaultHTTPTimeouts)
	f.http.ErrorLog = rpc.NewHTTPErrorLog(log, clk)
	f.mux = newPortMux(netutil.LimitListener(lis, c.MaxConnections), sec.tls.SharedPortConfig(), log, f.http.ErrorLog)
	if c.HTTPListen != "" {
		if f.httpLis, err = net.Listen("tcp", c.HTTPListen); err != nil {
			lis.Close()
			return nil, fmt.Errorf("listen on %s (--http-listen): %w", c.HTTPListen, err)
		}
		f.httpLis = netutil.LimitListener(f.httpLis, c.MaxConnections)
	}
	if addr := c.respListen(); addr != "" {
		if f.respLis, err = net.Listen("tcp", addr); err != nil {
			lis.Close()
			if f.httpLis != nil {
				f.httpLis.Close()
			}
			return nil, fmt.Errorf("listen on %s (--resp-listen; empty disables the Redis front): %w", addr, err)
		}
		f.respLis = netutil.LimitListener(f.respLis, c.MaxConnections)
		f.respBackend = redisfront.NewActorBackend(clk)
		f.resp = redisfront.NewServer(redisfront.Config{
			Backend:        f.respBackend,
			Auth:           sec.auth,
			TLS:            sec.tls.Config(),
			MaxKeyBytes:    int(c.MaxKeyBytes),
			MaxValueBytes:  int(c.MaxValueBytes),
			MaxMemory:      int64(c.MaxMemory),
			Fsync:          c.Fsync.String(),
			RequestTimeout: c.RequestTimeout,
			Clock:          clk,
			Log:            log,
		})
	}
	return f, nil
}

// respListen is --resp-listen, which cluster mode does not serve yet.
func (c *Config) respListen() string {
	if c.RaftListen != "" {
		return ""
	}
	return c.RESPListen
}

// respAddr is --resp-listen's address, nil without the Redis front.
func (f *fronts) respAddr() net.Addr {
	if f.respLis == nil {
		return nil
	}
	return f.respLis.Addr()
}

// attach hands the data to the fronts that are not rpc's.
func (f *fronts) attach(a *actor.Actor) {
	if f.respBackend != nil {
		f.respBackend.Set(a)
	}
}

// addr is the --listen address; httpAddr is --http-listen's, or the same
// when HTTP has no port of its own.
func (f *fronts) addr() net.Addr { return f.mux.Addr() }

func (f *fronts) httpAddr() net.Addr {
	if f.httpLis != nil {
		return f.httpLis.Addr()
	}
	return f.mux.Addr()
}

// httpTimeouts bound how long one HTTP request may hold its connection
// (and so a --max-connections slot).
type httpTimeouts struct {
	// header: to read the request line and headers; read: the whole
	// request, body included; write: from the end of the headers to the
	// end of the response; idle: between requests.
	header, read, write, idle time.Duration
}

// defaultHTTPTimeouts fit the largest body (6 × --max-value-bytes) on a
// slow link; write covers read, the handler (--request-timeout) and the
// response, and is over pprof's default 30 s profile.
var defaultHTTPTimeouts = httpTimeouts{
	header: 10 * time.Second,
	read:   30 * time.Second,
	write:  90 * time.Second,
	idle:   2 * time.Minute,
}

// httpMaxHeaderBytes bounds an HTTP request's line and headers: room for
// the longest key with every byte percent-encoded, and 8 KiB for the rest.
// It is also the HTTP/2 SETTINGS_MAX_HEADER_LIST_SIZE.
func httpMaxHeaderBytes(maxKeyBytes int) int { return 3*maxKeyBytes + 8<<10 }

// httpMaxStreams bounds concurrent requests on one HTTP/2 connection.
const httpMaxStreams = 100

// newHTTPServer returns the HTTP server of the fronts: a slow, silent or
// greedy client must not pin a connection, or much memory, for long.
func newHTTPServer(h http.Handler, tlsConfig *tls.Config, maxKeyBytes int, t httpTimeouts) *http.Server {
	return &http.Server{
		Handler:           h,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: t.header,
		ReadTimeout:       t.read,
		WriteTimeout:      t.write,
		IdleTimeout:       t.idle,
		MaxHeaderBytes:    httpMaxHeaderBytes(maxKeyBytes),
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: httpMaxStreams},
	}
}

// serve starts serving on every listener.
func (f *fronts) serve() {
	f.errc = make(chan error, 4)
	serve := func(fn func() error) {
		f.running++
		go func() {
			err := fn()
			if errors.Is(err, http.ErrServerClosed) {
				err = nil
			}
			f.errc <- err
		}()
	}
	serve(f.mux.serve)
	serve(func() error { return f.grpc.Serve(f.mux.grpc) })
	// The mux hands on TLS connections with the handshake done.
	serve(func() error { return f.http.Serve(f.mux.http) })
	if f.resp != nil {
		serve(func() error { return f.resp.Serve(f.respLis) })
	}
	if f.httpLis != nil {
		serve(func() error {
			if f.tls {
				return f.http.ServeTLS(f.httpLis, "", "") // certificates come from TLSConfig
			}
			return f.http.Serve(f.httpLis)
		})
	}
}

// wait returns when the first front stops serving, with its error.
func (f *fronts) wait() error { return <-f.errc }

// shutdown marks the server NOT_SERVING, stops accepting and drains
// in-flight requests on both fronts until ctx ends, then cancels the rest.
// It returns once every Serve has returned.
func (f *fronts) shutdown(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(2)
	if f.resp != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.resp.Shutdown(ctx)
		}()
	}
	go func() {
		defer wg.Done()
		f.grpc.Shutdown(ctx)
	}()
	go func() {
		defer wg.Done()
		if err := f.http.Shutdown(ctx); err != nil {
			f.http.Close()
		}
	}()
	wg.Wait()
	f.mux.close()
	f.drain()
}

// stop closes everything at once: for a server that fails to start.
func (f *fronts) stop() {
	f.grpc.Stop()
	f.http.Close()
	if f.resp != nil {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		f.resp.Shutdown(ctx)
	}
	f.mux.close()
	f.drain()
}

// drain waits for the Serve goroutines that have not reported yet; wait
// may have taken one report already.
func (f *fronts) drain() {
	f.stopOnce.Do(func() {
		for range f.running - 1 {
			<-f.errc
		}
	})
}
