package rpc

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"time"
)

// ErrServerSpeaksTLS is returned by ProbeTLSMismatch when a plaintext
// client failed to reach a server that answers a TLS handshake.
var ErrServerSpeaksTLS = errors.New("server speaks TLS; pass --tls-ca (or KVSTORE_TLS_CA)")

// ErrServerPlaintext is returned by ProbeTLSMismatch when a TLS client
// failed to reach a server that answers plaintext HTTP/2.
var ErrServerPlaintext = errors.New("server does not speak TLS; drop --tls-ca and the other --tls-* flags")

// probeTimeout bounds a probe: it follows a call that already failed, so
// it must not double the user's wait.
const probeTimeout = 2 * time.Second

// ProbeTLSMismatch looks, after a call to addr failed as Unavailable, for
// the mistake gRPC's own error does not name: a plaintext client at a TLS
// port ("error reading server preface: connection reset by peer") or a TLS
// client at a plaintext one (a handshake error). It opens one connection
// of the other kind and returns ErrServerSpeaksTLS or ErrServerPlaintext
// when that one is answered, nil when not (no mismatch, or no server). It
// sends no request and no credentials.
func ProbeTLSMismatch(ctx context.Context, addr string, clientTLS bool) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		conn.SetDeadline(deadline)
	}
	if clientTLS {
		if speaksPlainHTTP2(conn) {
			return ErrServerPlaintext
		}
		return nil
	}
	// Only whether the server speaks TLS matters here, not who it is: the
	// real connection verifies the certificate.
	tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}}) //nolint:gosec // a probe, no data
	err = tc.HandshakeContext(ctx)
	// An alert (a server that wants a client certificate, say) is TLS too.
	if err == nil || errors.As(err, new(tls.AlertError)) {
		return ErrServerSpeaksTLS
	}
	return nil
}

// http2Preface is a client's connection preface and an empty SETTINGS
// frame (RFC 9113 §3.4).
var http2Preface = append([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 0, 0, 0, 4, 0, 0, 0, 0, 0)

// speaksPlainHTTP2 reports whether the server on conn answers an HTTP/2
// preface in clear with a SETTINGS frame, as a plaintext gRPC server does.
func speaksPlainHTTP2(conn net.Conn) bool {
	if _, err := conn.Write(http2Preface); err != nil {
		return false
	}
	var hdr [9]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		return false
	}
	// A frame header: 24-bit length, type 4 (SETTINGS), flags, stream 0.
	return hdr[3] == 4 && bytes.Equal(hdr[5:9], []byte{0, 0, 0, 0})
}
