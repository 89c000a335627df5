package rpc

import (
	"context"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protowire"

	"kvstore/actor"
	kvstorepb "kvstore/proto"
)

// rawCodec sends and receives messages as the bytes given, as a client
// library that does not check proto3 strings would.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *v.(*[]byte), nil }
func (rawCodec) Unmarshal(b []byte, v any) error {
	*v.(*[]byte) = append([]byte(nil), b...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

// TestGRPCInvalidUTF8 pins what README (API) tells a client about strings
// that are not UTF-8: grpc-go refuses them before sending, a client that
// sends them anyway is refused by the server's gRPC library, both with
// Internal, and nothing reaches the store.
func TestGRPCInvalidUTF8(t *testing.T) {
	mock := clock.NewMock()
	mock.Set(time.Unix(1_700_000_000, 0))
	a := actor.New(actor.Config{ExpireInterval: -1})
	svc := NewService(a, Options{Clock: mock})
	srv := NewServer(svc, ServerOptions{})
	t.Cleanup(a.Stop)
	conn := serveLoopback(t, srv.Serve, stopNow(srv))
	client := kvstorepb.NewKVStoreClient(conn)
	ctx := context.Background()

	for _, req := range []*kvstorepb.SetRequest{
		{Key: "k\xff", Value: "v"},
		{Key: "k", Value: "\xed\xa0\x80"}, // a UTF-8-encoded surrogate
	} {
		_, err := client.Set(ctx, req)
		wantCode(t, err, codes.Internal, "grpc: error while marshaling: string field contains invalid UTF-8")
	}

	var msg []byte
	msg = protowire.AppendTag(msg, 1, protowire.BytesType)
	msg = protowire.AppendString(msg, "k")
	msg = protowire.AppendTag(msg, 2, protowire.BytesType)
	msg = protowire.AppendString(msg, "v\xff")
	var resp []byte
	err := conn.Invoke(ctx, "/kvstore.v1.KVStore/Set", &msg, &resp, grpc.ForceCodec(rawCodec{}))
	wantCode(t, err, codes.Internal, "grpc: failed to unmarshal the received message: string field contains invalid UTF-8")

	for _, key := range []string{"k", "k\ufffd"} {
		if got, err := svc.Get(ctx, &kvstorepb.GetRequest{Key: key}); err != nil || got.GetFound() {
			t.Fatalf("Get(%q) = %v, %v; want not found", key, got, err)
		}
	}
}
