package main

import (
	"strings"
	"testing"
)

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"localhost:50051": true,
		"LOCALHOST:1":     true,
		"127.0.0.1:1":     true,
		"127.8.9.10:1":    true,
		"[::1]:1":         true,
		":50051":          false,
		"0.0.0.0:1":       false,
		"[::]:1":          false,
		"10.0.0.1:1":      false,
		"example.com:1":   false,
		"garbage":         false,
	} {
		if got := isLoopback(addr); got != want {
			t.Errorf("isLoopback(%q) = %v; want %v", addr, got, want)
		}
	}
}

func TestProtectedMode(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "loopback needs nothing", args: nil},
		{name: "all interfaces refused", args: []string{"--listen", ":50051"}, wantErr: "protected mode: --listen :50051"},
		{name: "http on all interfaces refused", args: []string{"--http-listen", "0.0.0.0:8080"}, wantErr: "protected mode: --http-listen"},
		{name: "disabled http is fine", args: []string{"--http-listen", ""}},
		{name: "insecure allows it", args: []string{"--listen", ":50051", "--insecure"}},
		{name: "auth allows it", args: []string{"--listen", ":50051", "--auth-file", "tokens"}},
		{name: "tls allows it", args: []string{"--listen", ":50051", "--tls-cert", "c.pem", "--tls-key", "k.pem"}},
		{name: "cert without key", args: []string{"--tls-cert", "c.pem"}, wantErr: "--tls-cert and --tls-key go together"},
		{name: "client ca without cert", args: []string{"--tls-client-ca", "ca.pem"}, wantErr: "--tls-client-ca needs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMain()
			err := m.ParseFlags(tt.args, noEnv)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("err = %v; want none", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v; want it to contain %q", err, tt.wantErr)
			}
		})
	}
	// The message explains both fixes and the way out.
	m := NewMain()
	err := m.ParseFlags([]string{"--listen", ":1"}, noEnv)
	for _, part := range []string{"--auth-file", "--tls-cert", "--insecure", "loopback"} {
		if err == nil || !strings.Contains(err.Error(), part) {
			t.Errorf("protected-mode error lacks %q: %v", part, err)
		}
	}
}
