package server

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	kvstorepb "kvstore/proto"
	"kvstore/wal"
)

// hangGuard bounds how long a test waits for an answer the server must
// give; no timing assertion: on broken code the answer never comes.
const hangGuard = 30 * time.Second

// startHTTPFronts runs a server whose one port (gRPC and HTTP, no
// --http-listen) takes one connection at a time, with the HTTP timeouts
// given, and returns its addresses (the same).
func startHTTPFronts(t *testing.T, timeouts httpTimeouts, maxValue ByteSize) (grpcAddr, httpAddr string) {
	t.Helper()
	saved := defaultHTTPTimeouts
	defaultHTTPTimeouts = timeouts
	t.Cleanup(func() { defaultHTTPTimeouts = saved })
	c := DefaultConfig()
	c.DataDir = t.TempDir()
	c.Listen = "127.0.0.1:0"
	c.RESPListen = "127.0.0.1:0"
	c.MaxConnections = 1
	c.MaxValueBytes = maxValue
	c.Fsync = wal.FsyncNo
	c.WALPreallocBytes = 0
	c.GCHeapFloor = 0
	c.Logger = slog.New(slog.DiscardHandler)
	s, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Run(context.Background()) }()
	select {
	case <-s.Ready():
	case err := <-errc:
		t.Fatalf("Run: %v", err)
	}
	t.Cleanup(func() {
		s.Close()
		if err := <-errc; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return s.Addr().String(), s.HTTPAddr().String()
}

// rawHTTP sends req on a new connection and returns it.
func rawHTTP(t *testing.T, addr, req string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(hangGuard))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	return conn
}

// healthz waits for GET /healthz on a new connection: with one
// connection slot, it is served only once every other connection is gone.
func healthz(t *testing.T, addr string) {
	t.Helper()
	conn := rawHTTP(t, addr, "GET /healthz HTTP/1.1\r\nHost: kvstore\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("/healthz: %v: a connection still holds the only slot", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: %d", resp.StatusCode)
	}
}

// A PUT whose body never arrives is answered 408 once the read timeout
// passes, and gives its connection slot back.
func TestHTTPBodyReadTimeout(t *testing.T) {
	timeouts := defaultHTTPTimeouts
	timeouts.read = 100 * time.Millisecond
	_, addr := startHTTPFronts(t, timeouts, 1<<20)
	conn := rawHTTP(t, addr, "PUT /v1/keys/x HTTP/1.1\r\nHost: kvstore\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"value\": ")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a PUT whose body stalls: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout || !resp.Close || !strings.Contains(string(body), "DEADLINE_EXCEEDED") {
		t.Fatalf("got %d (close %v) %s; want 408 DEADLINE_EXCEEDED and close", resp.StatusCode, resp.Close, body)
	}
	healthz(t, addr)
}

// A client that asks for a large value and never reads it loses its
// connection once the write timeout passes, and with it its slot.
func TestHTTPWriteTimeout(t *testing.T) {
	timeouts := defaultHTTPTimeouts
	timeouts.write = 100 * time.Millisecond
	const size = 16 << 20 // well past what socket buffers hold
	grpcAddr, addr := startHTTPFronts(t, timeouts, size)
	gc, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer gc.Close()
	if _, err := kvstorepb.NewKVStoreClient(gc).Set(context.Background(), &kvstorepb.SetRequest{Key: "big", Value: strings.Repeat("v", size)}); err != nil {
		t.Fatal(err)
	}
	gc.Close() // its connection holds the only slot
	conn := rawHTTP(t, addr, "GET /v1/keys/big HTTP/1.1\r\nHost: kvstore\r\n\r\n")
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetReadBuffer(4 << 10)
	}
	healthz(t, addr) // never reading conn
}

// Request headers are bounded to what the longest key needs, far below
// net/http's 1 MiB default.
func TestHTTPMaxHeaderBytes(t *testing.T) {
	_, addr := startHTTPFronts(t, defaultHTTPTimeouts, 1<<20)
	pad := strings.Repeat("p", httpMaxHeaderBytes(int(DefaultConfig().MaxKeyBytes))+8<<10)
	conn := rawHTTP(t, addr, "GET /healthz HTTP/1.1\r\nHost: kvstore\r\nX-Pad: "+pad+"\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("got %d for %d bytes of headers; want 431", resp.StatusCode, len(pad))
	}
	healthz(t, addr)
}
