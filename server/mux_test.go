package server

import (
	"context"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"golang.org/x/net/http2"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	kvstorepb "kvstore/proto"
	"kvstore/wal"
)

// startMux serves a portMux on a loopback port and returns it; its
// fronts' listeners are left for the test to Accept from.
func startMux(t *testing.T, timeout time.Duration) *portMux {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := newPortMux(lis, nil, slog.New(slog.DiscardHandler), log.New(io.Discard, "", 0))
	m.timeout = timeout
	errc := make(chan error, 1)
	go func() { errc <- m.serve() }()
	t.Cleanup(func() {
		m.close()
		if err := <-errc; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return m
}

// acceptAll returns the next connection l is handed, and all it has read.
func acceptAll(t *testing.T, l *muxListener) string {
	t.Helper()
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Each connection goes to the front its first bytes name, with every byte
// it sent, also when they arrive one at a time.
func TestPortMuxRoutesByPreface(t *testing.T) {
	m := startMux(t, hangGuard)
	for _, c := range []struct {
		name, send string
		oneByte    bool
		grpc       bool
	}{
		{"HTTP/2 preface", http2.ClientPreface + "frames", false, true},
		{"HTTP/2 preface byte by byte", http2.ClientPreface, true, true},
		{"HTTP/1 GET", "GET /healthz HTTP/1.1\r\n\r\n", false, false},
		{"HTTP/1 PUT byte by byte", "PUT /v1/keys/k HTTP/1.1\r\n\r\n", true, false},
		{"PR but not PRI", "PROPFIND / HTTP/1.1\r\n\r\n", true, false},
		{"shorter than the sniff", "G", false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", m.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			step := len(c.send)
			if c.oneByte {
				step = 1
			}
			for i := 0; i < len(c.send); i += step {
				if _, err := io.WriteString(conn, c.send[i:min(i+step, len(c.send))]); err != nil {
					t.Fatal(err)
				}
			}
			conn.(*net.TCPConn).CloseWrite()
			defer conn.Close()
			to, name := m.http, "HTTP"
			if c.grpc {
				to, name = m.grpc, "gRPC"
			}
			if got := acceptAll(t, to); got != c.send {
				t.Fatalf("%s front read %q; want %q", name, got, c.send)
			}
		})
	}
}

// A connection that does not show its protocol in time is closed without
// reaching either front, and close cuts the others short at once.
func TestPortMuxClosesSilentConnections(t *testing.T) {
	m := startMux(t, 50*time.Millisecond)
	conn, err := net.Dial("tcp", m.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(hangGuard))
	if n, err := conn.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("silent connection: read %d, %v; want EOF once the mux closes it", n, err)
	}

	slow := startMux(t, hangGuard)
	conn2, err := net.Dial("tcp", slow.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	// Sent while sniffing is under way, it keeps it there: "PR" could
	// still be either.
	io.WriteString(conn2, "PR")
	slow.close()
	conn2.SetDeadline(time.Now().Add(hangGuard))
	if n, err := conn2.Read(make([]byte, 1)); err == nil {
		t.Fatalf("read %d bytes from a connection the closed mux was sniffing", n)
	}
	if _, err := slow.grpc.Accept(); err == nil {
		t.Fatal("gRPC front accepted from a closed mux")
	}
}

// A front's listener closed (its Shutdown) closes what is routed to it,
// and leaves the other front serving.
func TestPortMuxClosedFront(t *testing.T) {
	m := startMux(t, hangGuard)
	m.grpc.Close()
	conn, err := net.Dial("tcp", m.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, http2.ClientPreface)
	conn.SetDeadline(time.Now().Add(hangGuard))
	if n, err := conn.Read(make([]byte, 1)); err == nil {
		t.Fatalf("gRPC connection after the gRPC front closed: read %d bytes; want it closed", n)
	}
	conn2, err := net.Dial("tcp", m.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	io.WriteString(conn2, "GET / HTTP/1.1\r\n\r\n")
	conn2.(*net.TCPConn).CloseWrite()
	if got := acceptAll(t, m.http); !strings.HasPrefix(got, "GET /") {
		t.Fatalf("HTTP front read %q", got)
	}
}

// The default configuration serves gRPC, REST, health and metrics on one
// port, with no second listener to collide with anything (it was
// localhost:8080, which `make run` failed on when the port was taken).
func TestOnePortServesGRPCAndHTTP(t *testing.T) {
	if got := DefaultConfig().HTTPListen; got != "" {
		t.Fatalf("default HTTPListen %q; want none: HTTP shares --listen", got)
	}
	c := recoveryConfig(t.TempDir(), wal.OS, clock.NewMock(), nil)
	c.Pprof = true
	r := startRun(t, c)
	s, gc := r.s, r.conn
	addr := s.Addr().String()
	if got := s.HTTPAddr().String(); got != addr {
		t.Fatalf("HTTPAddr %s; want the gRPC port %s", got, addr)
	}

	ctx := context.Background()
	if _, err := kvstorepb.NewKVStoreClient(gc).Set(ctx, &kvstorepb.SetRequest{Key: "k", Value: "from gRPC"}); err != nil {
		t.Fatal(err)
	}
	if resp, err := healthpb.NewHealthClient(gc).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("gRPC health: %v, %v", resp, err)
	}

	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	get := func(path string) (int, string) {
		resp, err := hc.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/v1/keys/k"); code != 200 || !strings.Contains(body, "from gRPC") {
		t.Fatalf("GET /v1/keys/k: %d %s", code, body)
	}
	for _, path := range []string{"/healthz", "/readyz", "/debug/pprof/cmdline"} {
		if code, body := get(path); code != 200 {
			t.Fatalf("GET %s: %d %s", path, code, body)
		}
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "grpc_server_handled_total") {
		t.Fatalf("GET /metrics: %d, no grpc_server_handled_total", code)
	}
	// A gRPC connection and HTTP keep-alive connections share the port
	// and serve on at the same time.
	req, _ := http.NewRequest(http.MethodPut, "http://"+addr+"/v1/keys/k", strings.NewReader(`{"value":"from HTTP"}`))
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if r, err := kvstorepb.NewKVStoreClient(gc).Get(ctx, &kvstorepb.GetRequest{Key: "k"}); err != nil || r.GetValue() != "from HTTP" {
		t.Fatalf("gRPC Get after an HTTP PUT: %v, %v", r, err)
	}
}
