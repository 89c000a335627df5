package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	kvstorepb "kvstore/proto"
	"kvstore/rpc"
)

// writeTLSFiles makes a throwaway CA and a server certificate for
// 127.0.0.1 and localhost, and writes ca.pem, cert.pem and key.pem to dir.
func writeTLSFiles(t *testing.T, dir string) (ca, cert, key string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	caCert, _ := x509.ParseCertificate(caDER)
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(srvKey)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("cert.pem", "CERTIFICATE", srvDER), write("key.pem", "EC PRIVATE KEY", keyDER)
}

// TestTLSAndAuthEndToEnd runs the real server with TLS and tokens: both
// fronts refuse calls without a token, enforce roles, and keep health
// open; a client that does not trust the CA cannot connect.
func TestTLSAndAuthEndToEnd(t *testing.T) {
	dir := t.TempDir()
	ca, cert, key := writeTLSFiles(t, dir)
	writeTok, writeLine, err := rpc.NewToken(rpc.RoleWrite, "ci")
	if err != nil {
		t.Fatal(err)
	}
	readTok, readLine, _ := rpc.NewToken(rpc.RoleRead, "")
	authFile := filepath.Join(dir, "tokens")
	if err := os.WriteFile(authFile, []byte(writeLine+"\n"+readLine+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m, stop := runMain(t, filepath.Join(dir, "data"), clock.NewMock(),
		"--tls-cert", cert, "--tls-key", key, "--auth-file", authFile, "--http-listen", "127.0.0.1:0")
	defer stop()

	client := func(token string, o rpc.ClientTLSOptions) kvstorepb.KVStoreClient {
		opts, err := rpc.DialOptions(rpc.ClientOptions{TLS: o, Token: token})
		if err != nil {
			t.Fatal(err)
		}
		conn, err := grpc.NewClient(m.Addr().String(), opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return kvstorepb.NewKVStoreClient(conn)
	}
	trusted := rpc.ClientTLSOptions{CAFile: ca, ServerName: "localhost"}
	ctx := context.Background()
	set := &kvstorepb.SetRequest{Key: "k", Value: "v"}

	if _, err := client(writeTok, trusted).Set(ctx, set); err != nil {
		t.Fatalf("Set with a write token over TLS: %v", err)
	}
	if resp, err := client(readTok, trusted).Get(ctx, &kvstorepb.GetRequest{Key: "k"}); err != nil || resp.GetValue() != "v" {
		t.Fatalf("Get with a read token: %v, %v", resp, err)
	}
	for _, c := range []struct {
		name   string
		client kvstorepb.KVStoreClient
		code   codes.Code
	}{
		{"no token", client("", trusted), codes.Unauthenticated},
		{"garbage token", client("kvs_nope", trusted), codes.Unauthenticated},
		{"read token writing", client(readTok, trusted), codes.PermissionDenied},
		{"plaintext client", client(writeTok, rpc.ClientTLSOptions{}), codes.Unavailable},
	} {
		if _, err := c.client.Set(ctx, set); status.Code(err) != c.code {
			t.Errorf("%s: Set = %v; want %v", c.name, err, c.code)
		}
	}

	// HTTP: same TLS, same tokens, health open; on the shared port
	// (the mux's handshake, ALPN picks http/1.1) and on --http-listen
	// (net/http's own, h2).
	cfg, err := rpc.ClientTLS(trusted)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg.Clone(), ForceAttemptHTTP2: true}}
	defer hc.CloseIdleConnections()
	for _, addr := range []string{m.Addr().String(), m.HTTPAddr().String()} {
		base := "https://" + addr
		do := func(method, path, token string) int {
			req, _ := http.NewRequest(method, base+path, strings.NewReader(`{"value":"w"}`))
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		for _, c := range []struct {
			method, path, token string
			want                int
		}{
			{"GET", "/healthz", "", 200},
			{"GET", "/readyz", "", 200},
			{"GET", "/v1/keys/k", "", 401},
			{"GET", "/v1/keys/k", readTok, 200},
			{"PUT", "/v1/keys/k", readTok, 403},
			{"PUT", "/v1/keys/k", writeTok, 200},
			{"GET", "/metrics", "", 401},
			{"GET", "/metrics", readTok, 200},
		} {
			if got := do(c.method, c.path, c.token); got != c.want {
				t.Errorf("HTTP %s %s on %s (token %v): %d; want %d", c.method, c.path, addr, c.token != "", got, c.want)
			}
		}
	}

	// Plain HTTP at the TLS port is told so, as net/http tells it.
	resp, err := http.Get("http://" + m.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(body), "HTTP request to an HTTPS server") {
		t.Errorf("plain HTTP at the TLS port: %d %q; want 400 saying it wants HTTPS", resp.StatusCode, body)
	}
}

func TestTokenCommand(t *testing.T) {
	var out, errOut strings.Builder
	if code := runToken([]string{"new", "--role", "write", "--name", "ci"}, &out, &errOut); code != 0 {
		t.Fatalf("token new: exit %d: %s", code, errOut.String())
	}
	var token, line string
	for _, l := range strings.Split(out.String(), "\n") {
		if v, ok := strings.CutPrefix(l, "token: "); ok {
			token = v
		}
		if v, ok := strings.CutPrefix(l, "auth-file line: "); ok {
			line = v
		}
	}
	if token == "" || !strings.HasPrefix(line, "write ") || strings.Contains(line, token) {
		t.Fatalf("token new printed %q", out.String())
	}
	path := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(path, []byte(line+"\n"), 0o600)
	if _, err := rpc.LoadAuth(path); err != nil {
		t.Fatalf("the printed line does not load: %v", err)
	}
	for _, args := range [][]string{nil, {"old"}, {"new"}, {"new", "--role", "root"}} {
		if code := runToken(args, &out, &errOut); code != 2 {
			t.Errorf("token %q: exit %d; want 2", args, code)
		}
	}
}

// TestSIGHUPReloadsTokens runs the real binary with an auth file, revokes
// a token in the file, sends SIGHUP, waits for the server to say it
// reloaded (the hand-off), and checks the token is refused while the
// connection it used stays up.
func TestSIGHUPReloadsTokens(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	keep, keepLine, _ := rpc.NewToken(rpc.RoleWrite, "keep")
	drop, dropLine, _ := rpc.NewToken(rpc.RoleWrite, "drop")
	authFile := filepath.Join(dir, "tokens")
	if err := os.WriteFile(authFile, []byte(keepLine+"\n"+dropLine+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startBinary(t, "--http-listen", "", "--data-dir", filepath.Join(dir, "data"), "--auth-file", authFile)
	addr := p.addr
	clientFor := func(token string) kvstorepb.KVStoreClient {
		opts, _ := rpc.DialOptions(rpc.ClientOptions{Token: token})
		conn, err := grpc.NewClient(addr, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return kvstorepb.NewKVStoreClient(conn)
	}
	kept, dropped := clientFor(keep), clientFor(drop)
	ctx := context.Background()
	set := &kvstorepb.SetRequest{Key: "k", Value: "v"}
	if _, err := dropped.Set(ctx, set); err != nil {
		t.Fatalf("before the reload: %v", err)
	}

	if err := os.WriteFile(authFile, []byte(keepLine+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitLog(t, "auth file reloaded", "reload failed")
	if _, err := dropped.Set(ctx, set); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("revoked token after SIGHUP: %v; want Unauthenticated", err)
	}
	if _, err := kept.Set(ctx, set); err != nil {
		t.Fatalf("kept token after SIGHUP: %v", err)
	}
}

// TestBinaryTLSHandshakeErrorsAreJSON is the regression test for net/http
// writing each failed TLS handshake as a plain-text line of its own, even
// with --log-format json: the real binary logs it as a JSON record.
func TestBinaryTLSHandshakeErrorsAreJSON(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	_, cert, key := writeTLSFiles(t, dir)
	p := startBinary(t, "--data-dir", filepath.Join(dir, "data"), "--log-format", "json",
		"--tls-cert", cert, "--tls-key", key)
	var serving struct{ HTTP string }
	if err := json.Unmarshal([]byte(p.waitLog(t, `"msg":"serving"`, "")), &serving); err != nil || serving.HTTP == "" {
		t.Fatalf("serving line: %+v, %v", serving, err)
	}
	// A client that does not trust the server's CA aborts the handshake.
	conn, err := tls.Dial("tcp", serving.HTTP, &tls.Config{ServerName: "localhost"})
	if err == nil {
		conn.Close()
		t.Fatal("handshake with an unknown CA succeeded")
	}
	line := p.waitLog(t, "TLS handshake failed", "http: TLS handshake error")
	var rec struct {
		Level, Msg, Remote, Err string
	}
	if err := json.Unmarshal([]byte(line), &rec); err != nil {
		t.Fatalf("not a JSON record: %q: %v", line, err)
	}
	if rec.Level != "WARN" || !strings.HasPrefix(rec.Remote, "127.0.0.1:") || !strings.Contains(rec.Err, "tls: bad certificate") {
		t.Fatalf("record %+v; want a WARN naming the client and the TLS alert", rec)
	}
}
