package rpc

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"

	"kvstore/actor"
	kvstorepb "kvstore/proto"
	"kvstore/wal"
	"kvstore/wal/actorlog"
	"kvstore/wal/faultfs"
)

// TestDiskFullRefusesWritesKeepsReads: once the log cannot write (ENOSPC),
// every write is Unavailable with the reason, nothing is acknowledged that
// is not on disk, and reads go on.
func TestDiskFullRefusesWritesKeepsReads(t *testing.T) {
	fsys := faultfs.New(1)
	log, err := wal.Open(wal.Options{Dir: "/data/wal", FS: fsys})
	if err != nil {
		t.Fatal(err)
	}
	log.Start(1)
	ts := startServer(t, actor.Config{Log: actorlog.New(log)}, Options{})
	t.Cleanup(func() { log.Close() })
	ctx := context.Background()

	if _, err := ts.client.Set(ctx, &kvstorepb.SetRequest{Key: "k", Value: "v"}); err != nil {
		t.Fatal(err)
	}
	fsys.LimitSpace(0)
	_, err = ts.client.Set(ctx, &kvstorepb.SetRequest{Key: "k2", Value: "v2"})
	wantCode(t, err, codes.Unavailable, "no space left on device")
	// Sticky: later writes fail at once, deletes too, even with space back.
	fsys.LimitSpace(1 << 20)
	_, err = ts.client.Set(ctx, &kvstorepb.SetRequest{Key: "k3", Value: "v3"})
	wantCode(t, err, codes.Unavailable, "writes are refused after a storage failure")
	_, err = ts.client.Delete(ctx, &kvstorepb.DeleteRequest{Key: "k"})
	wantCode(t, err, codes.Unavailable, "writes are refused")

	get, err := ts.client.Get(ctx, &kvstorepb.GetRequest{Key: "k"})
	if err != nil || get.GetValue() != "v" {
		t.Fatalf("Get after the failure = %v, %v; reads must go on", get, err)
	}
}
