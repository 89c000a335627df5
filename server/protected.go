package server

import (
	"fmt"
	"net"
	"strings"
)

// isLoopback reports whether a listen address only accepts connections
// from this machine: an IP in 127.0.0.0/8 or ::1, or "localhost". An empty
// host (":50051") listens on every interface and is not loopback; neither
// is any other name, whatever it resolves to today.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkProtected is Redis' protected mode: a server reachable from other
// machines with neither authentication nor TLS refuses to start, unless
// the operator says --insecure. Loopback needs no configuration.
func (c *Config) checkProtected() error {
	if c.Insecure {
		return nil
	}
	// Without mutual TLS raft's transport is neither authenticated nor
	// encrypted: any machine that reaches it could write to the log.
	if c.RaftListen != "" && !isLoopback(c.RaftListen) && c.TLSClientCA == "" {
		return fmt.Errorf("protected mode: --raft-listen %s accepts raft traffic from other machines, "+
			"which without TLS is neither authenticated nor encrypted. Set --tls-cert, --tls-key and "+
			"--tls-client-ca (mutual TLS between nodes), listen on a loopback address, or pass --insecure "+
			"on a network only the cluster's machines reach", c.RaftListen)
	}
	if c.AuthFile != "" || c.TLSCert != "" {
		return nil
	}
	for _, l := range []struct{ flag, addr string }{{"--listen", c.Listen}, {"--http-listen", c.HTTPListen}, {"--resp-listen", c.respListen()}} {
		if l.addr == "" || isLoopback(l.addr) {
			continue
		}
		return fmt.Errorf("protected mode: %s %s accepts connections from other machines, "+
			"but neither authentication nor TLS is configured. Either set --auth-file (tokens with roles; "+
			"see 'kvstore-server token new') or --tls-cert/--tls-key (better: both), listen on a loopback "+
			"address, or pass --insecure to serve this network without either", l.flag, l.addr)
	}
	return nil
}
