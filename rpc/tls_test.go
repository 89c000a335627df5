package rpc

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"kvstore/actor"
	kvstorepb "kvstore/proto"
)

// testCA is a throwaway certificate authority; nothing it signs outlives
// the test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(tb testing.TB, name string) *testCA {
	tb.Helper()
	key := newTestKey(tb)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func newTestKey(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return key
}

// issue signs tmpl for key and returns both as PEM.
func (ca *testCA) issue(tb testing.TB, tmpl *x509.Certificate, key *ecdsa.PrivateKey) (certPEM, keyPEM []byte) {
	tb.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		tb.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

// serverTemplate is a certificate for 127.0.0.1 and localhost, valid for
// an hour either side of now.
func serverTemplate(serial int64) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "kvstore test server"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
}

func clientTemplate(serial int64) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "kvstore test client"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
}

func writeTestFile(tb testing.TB, path string, data []byte) {
	tb.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		tb.Fatal(err)
	}
}

// tlsFiles are a CA, a server pair (serial 100) and a client pair (serial
// 200) it signed, written to a temporary directory.
type tlsFiles struct {
	dir                   string
	ca                    *testCA
	caFile                string
	certFile, keyFile     string
	clientCert, clientKey string
}

func newTLSFiles(tb testing.TB) *tlsFiles {
	tb.Helper()
	dir := tb.TempDir()
	f := &tlsFiles{
		dir:        dir,
		ca:         newTestCA(tb, "kvstore test CA"),
		caFile:     filepath.Join(dir, "ca.pem"),
		certFile:   filepath.Join(dir, "server.pem"),
		keyFile:    filepath.Join(dir, "server.key"),
		clientCert: filepath.Join(dir, "client.pem"),
		clientKey:  filepath.Join(dir, "client.key"),
	}
	writeTestFile(tb, f.caFile, f.ca.pem)
	f.writeServer(tb, f.ca, serverTemplate(100))
	c, k := f.ca.issue(tb, clientTemplate(200), newTestKey(tb))
	writeTestFile(tb, f.clientCert, c)
	writeTestFile(tb, f.clientKey, k)
	return f
}

// writeServer replaces the server's certificate and key files.
func (f *tlsFiles) writeServer(tb testing.TB, ca *testCA, tmpl *x509.Certificate) {
	tb.Helper()
	c, k := ca.issue(tb, tmpl, newTestKey(tb))
	writeTestFile(tb, f.certFile, c)
	writeTestFile(tb, f.keyFile, k)
}

func mustServerTLS(tb testing.TB, certFile, keyFile, clientCAFile string) *ServerTLS {
	tb.Helper()
	st, err := NewServerTLS(certFile, keyFile, clientCAFile)
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

func mustClientTLS(tb testing.TB, o ClientTLSOptions) *tls.Config {
	tb.Helper()
	cfg, err := ClientTLS(o)
	if err != nil {
		tb.Fatal(err)
	}
	return cfg
}

// startTLSServer serves KVStore over gRPC with cfg on a loopback port, the
// way the server wires it (credentials.NewTLS), and stops at cleanup.
func startTLSServer(tb testing.TB, cfg *tls.Config) string {
	tb.Helper()
	a := actor.New(actor.Config{ExpireInterval: -1})
	g := grpc.NewServer(grpc.Creds(credentials.NewTLS(cfg)))
	kvstorepb.RegisterKVStoreServer(g, NewService(a, Options{}))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- g.Serve(lis) }()
	tb.Cleanup(func() {
		g.Stop()
		<-served
		a.Stop()
	})
	return lis.Addr().String()
}

func dialTLS(tb testing.TB, addr string, cfg *tls.Config) kvstorepb.KVStoreClient {
	tb.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return kvstorepb.NewKVStoreClient(conn)
}

// roundTrip sets and gets a key and returns the TLS state of the
// connection the Get went over.
func roundTrip(tb testing.TB, client kvstorepb.KVStoreClient) (tls.ConnectionState, error) {
	tb.Helper()
	ctx := context.Background()
	if _, err := client.Set(ctx, &kvstorepb.SetRequest{Key: "k", Value: "v"}); err != nil {
		return tls.ConnectionState{}, err
	}
	var p peer.Peer
	get, err := client.Get(ctx, &kvstorepb.GetRequest{Key: "k"}, grpc.Peer(&p))
	if err != nil {
		return tls.ConnectionState{}, err
	}
	if get.GetValue() != "v" {
		tb.Fatalf("Get = %v; want v", get)
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		tb.Fatalf("peer auth info %T; want credentials.TLSInfo", p.AuthInfo)
	}
	return info.State, nil
}

// servedSerial opens a new TLS connection to addr and returns the serial
// of the certificate the server presented.
func servedSerial(tb testing.TB, addr string, cfg *tls.Config) int64 {
	tb.Helper()
	cfg = cfg.Clone()
	cfg.NextProtos = []string{"h2"}
	conn, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

func TestTLSRoundTrip(t *testing.T) {
	f := newTLSFiles(t)
	addr := startTLSServer(t, mustServerTLS(t, f.certFile, f.keyFile, "").Config())
	_, port, _ := net.SplitHostPort(addr)
	tests := []struct {
		name    string
		addr    string
		opts    ClientTLSOptions
		version uint16
	}{
		{"TLS 1.3", addr, ClientTLSOptions{CAFile: f.caFile}, tls.VersionTLS13},
		{"TLS 1.2", addr, ClientTLSOptions{CAFile: f.caFile}, tls.VersionTLS12},
		{"server name", net.JoinHostPort("127.0.0.1", port), ClientTLSOptions{CAFile: f.caFile, ServerName: "localhost"}, tls.VersionTLS13},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := mustClientTLS(t, tt.opts)
			cfg.MaxVersion = tt.version
			state, err := roundTrip(t, dialTLS(t, tt.addr, cfg))
			if err != nil {
				t.Fatal(err)
			}
			if state.Version != tt.version || state.NegotiatedProtocol != "h2" {
				t.Fatalf("version %s, ALPN %q; want %s, h2",
					tls.VersionName(state.Version), state.NegotiatedProtocol, tls.VersionName(tt.version))
			}
		})
	}
}

func TestTLSUnknownServer(t *testing.T) {
	f := newTLSFiles(t)
	addr := startTLSServer(t, mustServerTLS(t, f.certFile, f.keyFile, "").Config())
	other := filepath.Join(f.dir, "other-ca.pem")
	writeTestFile(t, other, newTestCA(t, "other CA").pem)
	_, err := roundTrip(t, dialTLS(t, addr, mustClientTLS(t, ClientTLSOptions{CAFile: other})))
	wantCode(t, err, codes.Unavailable, "certificate signed by unknown authority")
}

func TestTLSRejectsOldVersions(t *testing.T) {
	f := newTLSFiles(t)
	addr := startTLSServer(t, mustServerTLS(t, f.certFile, f.keyFile, "").Config())
	for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11} {
		cfg := mustClientTLS(t, ClientTLSOptions{CAFile: f.caFile})
		cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS10, v
		cfg.NextProtos = []string{"h2"}
		conn, err := tls.Dial("tcp", addr, cfg)
		if err == nil {
			conn.Close()
			t.Fatalf("%s handshake succeeded", tls.VersionName(v))
		}
		if !strings.Contains(err.Error(), "protocol version not supported") {
			t.Fatalf("%s: %v; want protocol version not supported", tls.VersionName(v), err)
		}
	}
}

func TestTLSClientCertificates(t *testing.T) {
	f := newTLSFiles(t)
	addr := startTLSServer(t, mustServerTLS(t, f.certFile, f.keyFile, f.caFile).Config())

	// A client certificate from another CA, and the server's own
	// certificate (not for client auth) as a client's.
	other := newTestCA(t, "other CA")
	c, k := other.issue(t, clientTemplate(300), newTestKey(t))
	otherCert, otherKey := filepath.Join(f.dir, "other.pem"), filepath.Join(f.dir, "other.key")
	writeTestFile(t, otherCert, c)
	writeTestFile(t, otherKey, k)

	tests := []struct {
		name string
		opts ClientTLSOptions
		// want12 and want13 are the alerts that refuse the client under
		// TLS 1.2 and 1.3; empty: accepted.
		want12, want13 string
	}{
		{"signed by the client CA", ClientTLSOptions{CAFile: f.caFile, CertFile: f.clientCert, KeyFile: f.clientKey}, "", ""},
		{"no certificate", ClientTLSOptions{CAFile: f.caFile}, "handshake failure", "certificate required"},
		{"another CA", ClientTLSOptions{CAFile: f.caFile, CertFile: otherCert, KeyFile: otherKey}, "unknown certificate authority", "unknown certificate authority"},
		{"server certificate", ClientTLSOptions{CAFile: f.caFile, CertFile: f.certFile, KeyFile: f.keyFile}, "bad certificate", "bad certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
				want := tt.want12
				if v == tls.VersionTLS13 {
					want = tt.want13
				}
				cfg := mustClientTLS(t, tt.opts)
				cfg.MaxVersion = v
				_, err := roundTrip(t, dialTLS(t, addr, cfg))
				if want == "" {
					if err != nil {
						t.Fatalf("%s: %v", tls.VersionName(v), err)
					}
					continue
				}
				// Under TLS 1.3 the client finishes its side of the
				// handshake before the server judges its certificate, so
				// gRPC may see a broken pipe rather than the alert; a bare
				// TLS connection reads the alert itself.
				wantCode(t, err, codes.Unavailable, "")
				if err := rejection(t, addr, cfg); err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("%s: %v; want %q", tls.VersionName(v), err, want)
				}
			}
		})
	}
}

// rejection opens a bare TLS connection offering h2 to addr and returns
// the error that ends it, or nil once the server sends its first HTTP/2
// frame (gRPC and HTTP/2 servers speak first).
func rejection(tb testing.TB, addr string, cfg *tls.Config) error {
	tb.Helper()
	cfg = cfg.Clone()
	cfg.NextProtos = []string{"h2"}
	conn, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = conn.Read(make([]byte, 1))
	return err
}

func TestTLSReload(t *testing.T) {
	f := newTLSFiles(t)
	st := mustServerTLS(t, f.certFile, f.keyFile, "")
	addr := startTLSServer(t, st.Config())
	cfg := mustClientTLS(t, ClientTLSOptions{CAFile: f.caFile})
	client := dialTLS(t, addr, cfg)
	if state, err := roundTrip(t, client); err != nil || state.PeerCertificates[0].SerialNumber.Int64() != 100 {
		t.Fatalf("before Reload: %v; want serial 100", err)
	}

	f.writeServer(t, f.ca, serverTemplate(101))
	if err := st.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := st.Certificate().SerialNumber.Int64(); got != 101 {
		t.Fatalf("Certificate() serial %d after Reload; want 101", got)
	}
	if got := servedSerial(t, addr, cfg); got != 101 {
		t.Fatalf("new connection got serial %d; want 101", got)
	}
	// The connection opened before the Reload is still the one in use:
	// its peer is still the old certificate.
	state, err := roundTrip(t, client)
	if err != nil {
		t.Fatalf("existing connection after Reload: %v", err)
	}
	if got := state.PeerCertificates[0].SerialNumber.Int64(); got != 100 {
		t.Fatalf("existing connection's serial %d; want 100 (reconnected?)", got)
	}
}

func TestTLSReloadClientCA(t *testing.T) {
	f := newTLSFiles(t)
	st := mustServerTLS(t, f.certFile, f.keyFile, f.caFile)
	addr := startTLSServer(t, st.Config())
	oldClient := mustClientTLS(t, ClientTLSOptions{CAFile: f.caFile, CertFile: f.clientCert, KeyFile: f.clientKey})
	if _, err := roundTrip(t, dialTLS(t, addr, oldClient)); err != nil {
		t.Fatal(err)
	}

	// Rotate the client CA: certificates it signs get in, those of the
	// old one no longer do.
	ca2 := newTestCA(t, "kvstore test CA 2")
	writeTestFile(t, f.caFile+".2", f.ca.pem) // the server's CA, for clients
	writeTestFile(t, f.caFile, ca2.pem)
	c, k := ca2.issue(t, clientTemplate(201), newTestKey(t))
	writeTestFile(t, f.clientCert, c)
	writeTestFile(t, f.clientKey, k)
	if err := st.Reload(); err != nil {
		t.Fatal(err)
	}
	newClient := mustClientTLS(t, ClientTLSOptions{CAFile: f.caFile + ".2", CertFile: f.clientCert, KeyFile: f.clientKey})
	if _, err := roundTrip(t, dialTLS(t, addr, newClient)); err != nil {
		t.Fatalf("client of the new CA: %v", err)
	}
	_, err := roundTrip(t, dialTLS(t, addr, oldClient))
	wantCode(t, err, codes.Unavailable, "")
	if err := rejection(t, addr, oldClient); err == nil || !strings.Contains(err.Error(), "unknown certificate authority") {
		t.Fatalf("client of the old CA: %v; want unknown certificate authority", err)
	}
}

func TestTLSReloadError(t *testing.T) {
	f := newTLSFiles(t)
	st := mustServerTLS(t, f.certFile, f.keyFile, f.caFile)
	addr := startTLSServer(t, st.Config())
	cfg := mustClientTLS(t, ClientTLSOptions{CAFile: f.caFile, CertFile: f.clientCert, KeyFile: f.clientKey})
	client := dialTLS(t, addr, cfg)
	if _, err := roundTrip(t, client); err != nil {
		t.Fatal(err)
	}
	certPEM, _ := os.ReadFile(f.certFile)
	keyPEM, _ := os.ReadFile(f.keyFile)
	caPEM, _ := os.ReadFile(f.caFile)
	restore := func() {
		writeTestFile(t, f.certFile, certPEM)
		writeTestFile(t, f.keyFile, keyPEM)
		writeTestFile(t, f.caFile, caPEM)
	}

	expired := serverTemplate(102)
	expired.NotBefore, expired.NotAfter = time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour)
	tests := []struct {
		name    string
		break_  func()
		wantErr string
	}{
		{"certificate not PEM", func() { writeTestFile(t, f.certFile, []byte("not a certificate")) }, f.certFile},
		{"key missing", func() { os.Remove(f.keyFile) }, f.keyFile},
		{"key of another certificate", func() {
			c, _ := f.ca.issue(t, serverTemplate(103), newTestKey(t))
			writeTestFile(t, f.certFile, c)
		}, "private key does not match public key"},
		{"certificate expired", func() { f.writeServer(t, f.ca, expired) }, "certificate expired"},
		{"client CA not PEM", func() { writeTestFile(t, f.caFile, keyPEM) }, f.caFile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer restore()
			tt.break_()
			err := st.Reload()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Reload = %v; want an error containing %q", err, tt.wantErr)
			}
			if got := st.Certificate().SerialNumber.Int64(); got != 100 {
				t.Fatalf("Certificate() serial %d after a failed Reload; want 100", got)
			}
			if got := servedSerial(t, addr, cfg); got != 100 {
				t.Fatalf("new connection got serial %d after a failed Reload; want 100", got)
			}
			if _, err := roundTrip(t, client); err != nil {
				t.Fatalf("existing connection after a failed Reload: %v", err)
			}
		})
	}
	if err := st.Reload(); err != nil {
		t.Fatalf("Reload of the restored files: %v", err)
	}
}

func TestNewServerTLSErrors(t *testing.T) {
	f := newTLSFiles(t)
	missing := filepath.Join(f.dir, "missing.pem")
	garbage := filepath.Join(f.dir, "garbage.pem")
	writeTestFile(t, garbage, []byte("-----BEGIN CERTIFICATE-----\nnot base64\n"))
	expiredCert, expiredKey := filepath.Join(f.dir, "expired.pem"), filepath.Join(f.dir, "expired.key")
	tmpl := serverTemplate(104)
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour)
	c, k := f.ca.issue(t, tmpl, newTestKey(t))
	writeTestFile(t, expiredCert, c)
	writeTestFile(t, expiredKey, k)
	futureCert, futureKey := filepath.Join(f.dir, "future.pem"), filepath.Join(f.dir, "future.key")
	tmpl = serverTemplate(105)
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(time.Hour), time.Now().Add(2*time.Hour)
	c, k = f.ca.issue(t, tmpl, newTestKey(t))
	writeTestFile(t, futureCert, c)
	writeTestFile(t, futureKey, k)

	tests := []struct {
		name                string
		cert, key, clientCA string
		want                []string
	}{
		{"cert missing", missing, f.keyFile, "", []string{"--tls-cert", missing, "no such file"}},
		{"cert not PEM", f.keyFile, f.keyFile, "", []string{"--tls-cert", f.keyFile, "no PEM certificate"}},
		{"cert corrupt", garbage, f.keyFile, "", []string{"--tls-cert", garbage, "no PEM certificate"}},
		{"key missing", f.certFile, missing, "", []string{"--tls-key", missing, "no such file"}},
		{"key not PEM", f.certFile, f.caFile, "", []string{"--tls-key", f.caFile}},
		{"key mismatch", f.certFile, f.clientKey, "", []string{"--tls-key", f.clientKey, "does not match"}},
		{"expired", expiredCert, expiredKey, "", []string{"--tls-cert", expiredCert, "expired at"}},
		{"not yet valid", futureCert, futureKey, "", []string{"--tls-cert", futureCert, "not valid before"}},
		{"client CA missing", f.certFile, f.keyFile, missing, []string{"--tls-client-ca", missing, "no such file"}},
		{"client CA not PEM", f.certFile, f.keyFile, f.keyFile, []string{"--tls-client-ca", f.keyFile, "no PEM certificate"}},
		{"cert without key", f.certFile, "", "", []string{"--tls-cert and --tls-key go together"}},
		{"key without cert", "", f.keyFile, "", []string{"--tls-cert and --tls-key go together"}},
		{"client CA alone", "", "", f.caFile, []string{"--tls-client-ca needs --tls-cert and --tls-key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := NewServerTLS(tt.cert, tt.key, tt.clientCA)
			if err == nil {
				t.Fatalf("NewServerTLS = %v, nil; want an error", st)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q; want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestTLSPlaintext(t *testing.T) {
	st, err := NewServerTLS("", "", "")
	if st != nil || err != nil {
		t.Fatalf("NewServerTLS of nothing = %v, %v; want nil, nil", st, err)
	}
	if st.Config() != nil || st.Reload() != nil || st.Certificate() != nil {
		t.Fatal("a nil ServerTLS must give a nil Config and Certificate and Reload without error")
	}
	if cfg, err := ClientTLS(ClientTLSOptions{}); cfg != nil || err != nil {
		t.Fatalf("ClientTLS of nothing = %v, %v; want nil, nil", cfg, err)
	}
}

func TestClientTLSErrors(t *testing.T) {
	f := newTLSFiles(t)
	missing := filepath.Join(f.dir, "missing.pem")
	tests := []struct {
		name string
		opts ClientTLSOptions
		want []string
	}{
		{"CA missing", ClientTLSOptions{CAFile: missing}, []string{"--tls-ca", missing}},
		{"CA not PEM", ClientTLSOptions{CAFile: f.clientKey}, []string{"--tls-ca", f.clientKey, "no PEM certificate"}},
		{"cert without key", ClientTLSOptions{CertFile: f.clientCert}, []string{"--tls-cert and --tls-key go together"}},
		{"key mismatch", ClientTLSOptions{CertFile: f.clientCert, KeyFile: f.keyFile}, []string{"--tls-key", f.keyFile, "does not match"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ClientTLS(tt.opts)
			if err == nil {
				t.Fatal("ClientTLS succeeded; want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q; want it to contain %q", err, w)
				}
			}
		})
	}
	// A server name alone turns TLS on, with the system's roots.
	cfg, err := ClientTLS(ClientTLSOptions{ServerName: "kvstore.example"})
	if err != nil || cfg == nil || cfg.ServerName != "kvstore.example" || cfg.RootCAs != nil || cfg.MinVersion != tls.VersionTLS12 {
		t.Fatalf("ClientTLS(ServerName) = %+v, %v", cfg, err)
	}
}

// TestTLSHTTP serves HTTP with the same Config, as the HTTP front does
// (ServeTLS with no files): HTTP/2 and HTTP/1.1 clients get in with a
// client certificate, a client without one does not.
func TestTLSHTTP(t *testing.T) {
	f := newTLSFiles(t)
	st := mustServerTLS(t, f.certFile, f.keyFile, f.caFile)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, r.TLS.PeerCertificates[0].Subject.CommonName)
		}),
		TLSConfig: st.Config(),
		ErrorLog:  log.New(io.Discard, "", 0), // refused handshakes
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.ServeTLS(lis, "", "") }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("ServeTLS: %v", err)
		}
	})
	url := "https://" + lis.Addr().String() + "/"

	get := func(t *testing.T, cfg *tls.Config, http1Only bool) (*http.Response, string, error) {
		t.Helper()
		// The transport adds to its config's NextProtos: one each.
		tr := &http.Transport{TLSClientConfig: cfg.Clone(), ForceAttemptHTTP2: true}
		if http1Only {
			tr.Protocols = new(http.Protocols)
			tr.Protocols.SetHTTP1(true)
		}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Get(url)
		if err != nil {
			return nil, "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp, string(body), err
	}

	withCert := mustClientTLS(t, ClientTLSOptions{CAFile: f.caFile, CertFile: f.clientCert, KeyFile: f.clientKey})
	for _, tt := range []struct {
		name      string
		http1Only bool
		proto     string
	}{
		{"HTTP/2", false, "HTTP/2.0"},
		{"HTTP/1.1", true, "HTTP/1.1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body, err := get(t, withCert, tt.http1Only)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Proto != tt.proto || resp.TLS.Version != tls.VersionTLS13 || body != "kvstore test client" {
				t.Fatalf("%s over %s, body %q; want %s over TLS 1.3, the client's name",
					resp.Proto, tls.VersionName(resp.TLS.Version), body, tt.proto)
			}
		})
	}
	t.Run("no client certificate", func(t *testing.T) {
		cfg := mustClientTLS(t, ClientTLSOptions{CAFile: f.caFile})
		if _, _, err := get(t, cfg, false); err == nil {
			t.Fatal("GET without a client certificate succeeded")
		}
		// The transport does not say why; a bare connection reads the
		// alert (the HTTP/2 server speaks first, like gRPC).
		if err := rejection(t, lis.Addr().String(), cfg); err == nil || !strings.Contains(err.Error(), "certificate required") {
			t.Fatalf("connection without a client certificate: %v; want certificate required", err)
		}
	})
}
