package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/benbjohnson/clock"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	kvstorepb "kvstore/proto"
)

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
			err := m.ParseFlags(tt.args)
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
	err := m.ParseFlags([]string{"--listen", ":1"})
	for _, part := range []string{"--auth-file", "--tls-cert", "--insecure", "loopback"} {
		if err == nil || !strings.Contains(err.Error(), part) {
			t.Errorf("protected-mode error lacks %q: %v", part, err)
		}
	}
}

// TestLimitsEndToEnd: with --max-memory, the real server fills up, refuses
// growing writes with ResourceExhausted on both fronts, and takes writes
// again once a delete made room; an oversized message is refused too.
func TestLimitsEndToEnd(t *testing.T) {
	m, stop := runMain(t, t.TempDir(), clock.NewMock(), "--max-memory", "1KiB", "--max-value-bytes", "100")
	defer stop()
	c := dial(t, m.Addr().String())
	ctx := context.Background()
	n := 0
	for ; ; n++ {
		_, err := c.Set(ctx, &kvstorepb.SetRequest{Key: fmt.Sprint("k", n), Value: "0123456789"})
		if status.Code(err) == codes.ResourceExhausted {
			if !strings.Contains(err.Error(), "--max-memory") {
				t.Fatalf("refusal does not name the limit: %v", err)
			}
			break
		}
		if err != nil || n > 100 {
			t.Fatalf("set %d: %v", n, err)
		}
	}
	if n == 0 {
		t.Fatal("the first write was refused")
	}
	base := "http://" + m.HTTPAddr().String()
	if code, _ := httpDo(t, "PUT", base+"/v1/keys/more", `{"value":"x"}`); code != 429 {
		t.Fatalf("HTTP PUT at the limit: %d; want 429", code)
	}
	if _, err := c.Get(ctx, &kvstorepb.GetRequest{Key: "k0"}); err != nil {
		t.Fatalf("read at the limit: %v", err)
	}
	if _, err := c.Delete(ctx, &kvstorepb.DeleteRequest{Key: "k0"}); err != nil {
		t.Fatalf("delete at the limit: %v", err)
	}
	if _, err := c.Set(ctx, &kvstorepb.SetRequest{Key: "again", Value: "0123456789"}); err != nil {
		t.Fatalf("write after a delete made room: %v", err)
	}
	// Far over the value limit, the transport refuses the message itself.
	_, err := c.Set(ctx, &kvstorepb.SetRequest{Key: "big", Value: strings.Repeat("x", 64<<10)})
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("oversized message: %v; want ResourceExhausted", err)
	}
}
