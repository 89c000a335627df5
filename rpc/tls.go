package rpc

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/credentials"
)

// tlsCipherSuites are the TLS 1.2 suites offered (TLS 1.3 suites are not
// configurable, and all are fine): forward secret AEADs only, which is
// also what HTTP/2 (RFC 7540 appendix A) and gRPC accept, so a client
// cannot negotiate a suite that the h2 layer then refuses.
var tlsCipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// tlsNextProtos is the ALPN list of every handshake. The per-handshake
// config, not the copies grpc-go and net/http make of Config, decides
// ALPN, so it offers what both fronts speak: gRPC clients only ask for h2,
// HTTP clients for h2 or http/1.1.
var tlsNextProtos = []string{"h2", "http/1.1"}

// ServerTLS holds the server's certificate, and the client CA when client
// certificates are required, and swaps in fresh copies of them on Reload.
// One Config serves both fronts. A nil *ServerTLS means plaintext: Config
// returns nil and Reload does nothing.
type ServerTLS struct {
	certFile, keyFile, clientCAFile string
	// current is the config of the files' last good reading; every
	// handshake starts from it.
	current atomic.Pointer[serverTLSState]
	// reloadMu orders Reloads, so that a slow one cannot store an older
	// reading of the files over a newer one.
	reloadMu sync.Mutex
}

// serverTLSState is one reading of the files. Nothing changes it once
// stored: handshakes share config.
type serverTLSState struct {
	config *tls.Config
	// grpc and http are config with ALPN narrowed to one front's
	// protocol, for SharedPortConfig.
	grpc, http *tls.Config
	leaf       *x509.Certificate
}

// NewServerTLS reads the server's certificate chain (PEM, leaf first, then
// any intermediates) and private key (PEM) and, when clientCAFile is not
// empty, the CA certificates (PEM) that client certificates must chain to:
// with it every client must present a certificate that verifies against
// them (mutual TLS). All empty returns nil and no error: plaintext.
//
// Errors name the file at fault and never quote its content: a missing or
// unreadable file, one without a PEM certificate (or key), a key that does
// not match the certificate, a certificate that has expired or is not valid
// yet (no client would accept it, so it is refused at start-up rather than
// served), a key file without a certificate file or the reverse, and a
// client CA without a certificate.
func NewServerTLS(certFile, keyFile, clientCAFile string) (*ServerTLS, error) {
	if certFile == "" && keyFile == "" && clientCAFile == "" {
		return nil, nil
	}
	if certFile == "" && keyFile == "" {
		return nil, errors.New("tls: --tls-client-ca needs --tls-cert and --tls-key")
	}
	if certFile == "" || keyFile == "" {
		return nil, errors.New("tls: --tls-cert and --tls-key go together")
	}
	t := &ServerTLS{certFile: certFile, keyFile: keyFile, clientCAFile: clientCAFile}
	s, err := t.load()
	if err != nil {
		return nil, err
	}
	t.current.Store(s)
	return t, nil
}

// Config returns the TLS configuration for both fronts: pass it to
// grpc.Creds(credentials.NewTLS(cfg)) and as http.Server.TLSConfig with
// ServeTLS(lis, "", ""). The HTTP server must keep HTTP/2 enabled (the
// default), since h2 is offered on every handshake.
//
// TLS 1.2 is the minimum. Each handshake takes the certificate and client
// CA in force when it starts, so a Reload changes what new connections see
// and leaves established ones alone. With a client CA, a client must
// present a certificate that chains to it (RequireAndVerifyClientCert).
// Whether there is a client CA is settled by NewServerTLS; a Reload only
// replaces the certificates.
func (t *ServerTLS) Config() *tls.Config {
	if t == nil {
		return nil
	}
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Copies: the caller owns cfg and may change it.
		CipherSuites: slices.Clone(tlsCipherSuites),
		NextProtos:   slices.Clone(tlsNextProtos),
		// The handshake uses what this returns, not cfg: the callback is
		// the one place that sees a Reload.
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return t.current.Load().config, nil
		},
	}
	if t.clientCAFile != "" {
		// Only for whoever inspects cfg; handshakes take it from above.
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg
}

// SharedPortConfig returns the TLS configuration of a port that serves
// gRPC and HTTP on one listener, which does the handshake itself and then
// hands each connection to one front by its negotiated protocol: "h2" to
// gRPC (serve it with ServerOptions.TLSAccepted), anything else to HTTP.
//
// ALPN picks the front. A client that offers h2 and not http/1.1 gets h2:
// gRPC clients (grpc-go, grpcurl, grpc-health-probe, grpc-java) offer
// only h2. Any other gets http/1.1 or no protocol: curl, browsers and
// Go's net/http offer http/1.1 too. An HTTP client that offers only h2
// is taken for gRPC; it needs a separate --http-listen port, which
// Config serves with h2 and http/1.1 alike.
//
// Otherwise it is Config: same versions, suites, certificates, client CA
// and Reload.
func (t *ServerTLS) SharedPortConfig() *tls.Config {
	cfg := t.Config()
	if cfg == nil {
		return nil
	}
	cfg.NextProtos = nil
	cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		s := t.current.Load()
		if slices.Contains(hello.SupportedProtos, "h2") && !slices.Contains(hello.SupportedProtos, "http/1.1") {
			return s.grpc, nil
		}
		return s.http, nil
	}
	return cfg
}

// Reload reads the files again and swaps them in atomically for new
// handshakes. On error, the certificate and client CA in force stay and
// the error is returned for the caller to log. Call it on SIGHUP; a
// certificate and key replaced one after the other fail as a mismatch
// until both are in place, without harm.
func (t *ServerTLS) Reload() error {
	if t == nil {
		return nil
	}
	t.reloadMu.Lock()
	defer t.reloadMu.Unlock()
	s, err := t.load()
	if err != nil {
		return err
	}
	t.current.Store(s)
	return nil
}

// Certificate returns the leaf certificate in force, for a log line after
// loading or reloading (serial, subject, expiry). Nil for a nil ServerTLS.
func (t *ServerTLS) Certificate() *x509.Certificate {
	if t == nil {
		return nil
	}
	return t.current.Load().leaf
}

func (t *ServerTLS) load() (*serverTLSState, error) {
	pair, err := loadKeyPair(t.certFile, t.keyFile, "--tls-cert", "--tls-key")
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		CipherSuites: tlsCipherSuites,
		NextProtos:   tlsNextProtos,
		Certificates: []tls.Certificate{pair},
	}
	if t.clientCAFile != "" {
		if cfg.ClientCAs, err = loadCertPool(t.clientCAFile, "--tls-client-ca"); err != nil {
			return nil, err
		}
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	grpcCfg, httpCfg := cfg.Clone(), cfg.Clone()
	grpcCfg.NextProtos = []string{"h2"}
	httpCfg.NextProtos = []string{"http/1.1"}
	return &serverTLSState{config: cfg, grpc: grpcCfg, http: httpCfg, leaf: pair.Leaf}, nil
}

// PeerConfig returns the TLS configuration a cluster node dials the
// other nodes with (raft's transport, forwarding to the leader): their
// certificates must chain to the client CA, and this node presents its
// own certificate, as reloaded. It needs a client CA (mutual TLS between
// nodes); without one, or on a nil *ServerTLS, it returns nil.
func (t *ServerTLS) PeerConfig() *tls.Config {
	if t == nil || t.clientCAFile == "" {
		return nil
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		RootCAs:    t.current.Load().config.ClientCAs,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			c := t.current.Load().config.Certificates[0]
			return &c, nil
		},
		// Verify against the CA of the reading in force at each handshake.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			opts := x509.VerifyOptions{Roots: t.current.Load().config.ClientCAs, Intermediates: x509.NewCertPool(),
				DNSName: cs.ServerName, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
			if len(cs.PeerCertificates) == 0 {
				return errors.New("tls: the peer sent no certificate")
			}
			for _, c := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(opts)
			return err
		},
	}
}

// ClientTLSOptions are a client's TLS settings, named after its flags.
type ClientTLSOptions struct {
	// CAFile holds the CA certificates (PEM) that the server's certificate
	// must chain to; empty means the system's roots.
	CAFile string
	// CertFile and KeyFile hold the client's certificate chain and key
	// (PEM), presented when the server asks for one (mutual TLS). Both or
	// neither.
	CertFile, KeyFile string
	// ServerName is the name the server's certificate must carry, when it
	// is not the host the client dials.
	ServerName string
}

// ClientTLS returns the TLS configuration for a client: TLS 1.2 at least,
// the server verified against CAFile. Any field set turns TLS on; all
// empty returns nil and no error: plaintext. Errors are those of
// NewServerTLS, naming the client's flags.
//
// For gRPC pass it to credentials.NewTLS, which adds h2 to the ALPN list.
// An http.Transport given it only tries HTTP/2 with ForceAttemptHTTP2.
//
// The certificate is sent whenever the server asks for one, even if the
// CA names the server lists do not include its issuer (a chain through an
// intermediate missing from CertFile, say): the server's verdict is then
// a clear "bad certificate" rather than "certificate required".
func ClientTLS(o ClientTLSOptions) (*tls.Config, error) {
	if o == (ClientTLSOptions{}) {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: o.ServerName}
	if o.CAFile != "" {
		var err error
		if cfg.RootCAs, err = loadCertPool(o.CAFile, "--tls-ca"); err != nil {
			return nil, err
		}
	}
	switch {
	case o.CertFile == "" && o.KeyFile == "":
	case o.CertFile == "" || o.KeyFile == "":
		return nil, errors.New("tls: --tls-cert and --tls-key go together")
	default:
		pair, err := loadKeyPair(o.CertFile, o.KeyFile, "--tls-cert", "--tls-key")
		if err != nil {
			return nil, err
		}
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &pair, nil
		}
	}
	return cfg, nil
}

// loadKeyPair reads a certificate chain and its key, checking each file on
// its own first so that the error names the one at fault. certFlag and
// keyFlag name the settings in errors.
func loadKeyPair(certFile, keyFile, certFlag, keyFlag string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tls: %s: %w", certFlag, err)
	}
	certs, err := parseCertificates(certPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tls: %s %s: %w", certFlag, certFile, err)
	}
	now := time.Now()
	if leaf := certs[0]; now.After(leaf.NotAfter) {
		return tls.Certificate{}, fmt.Errorf("tls: %s %s: certificate expired at %s",
			certFlag, certFile, leaf.NotAfter.UTC().Format(time.RFC3339))
	} else if now.Before(leaf.NotBefore) {
		return tls.Certificate{}, fmt.Errorf("tls: %s %s: certificate not valid before %s",
			certFlag, certFile, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tls: %s: %w", keyFlag, err)
	}
	// The certificate parsed, so any error is the key's: not PEM, not a
	// key, or not the certificate's.
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tls: %s %s (for %s %s): %w", keyFlag, keyFile, certFlag, certFile, err)
	}
	return pair, nil
}

// loadCertPool reads a file of PEM CA certificates.
func loadCertPool(file, flag string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("tls: %s: %w", flag, err)
	}
	certs, err := parseCertificates(data)
	if err != nil {
		return nil, fmt.Errorf("tls: %s %s: %w", flag, file, err)
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

// parseCertificates returns the CERTIFICATE blocks of a PEM file, in
// order. Other blocks are skipped, as crypto/tls does, so that a file
// holding both certificate and key works.
func parseCertificates(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for n := 1; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", n, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return certs, nil
}

// acceptedTLS are the gRPC server credentials of ServerOptions.TLSAccepted:
// the handshake is already done, so ServerHandshake only takes the
// connection's state, as grpc-go's own TLS credentials would have.
type acceptedTLS struct{}

// errNotTLS refuses a connection that did not come through a TLS
// handshake on a server whose gRPC is TLS only.
var errNotTLS = errors.New("rpc: connection is not TLS")

func (acceptedTLS) ServerHandshake(raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn := raw
	if c, ok := conn.(*serverConn); ok {
		conn = c.Conn
	}
	tc, ok := conn.(*tls.Conn)
	if !ok {
		return nil, nil, errNotTLS
	}
	state := tc.ConnectionState()
	if !state.HandshakeComplete || state.NegotiatedProtocol != "h2" {
		return nil, nil, fmt.Errorf("rpc: TLS connection negotiated %q, not h2", state.NegotiatedProtocol)
	}
	return raw, credentials.TLSInfo{
		State:          state,
		CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity},
	}, nil
}

func (acceptedTLS) ClientHandshake(context.Context, string, net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("rpc: acceptedTLS is server credentials")
}

func (acceptedTLS) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls"}
}

func (acceptedTLS) Clone() credentials.TransportCredentials { return acceptedTLS{} }

// OverrideServerName is deprecated in grpc-go and unused by servers.
func (acceptedTLS) OverrideServerName(string) error { return nil }
