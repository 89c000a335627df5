package main

import (
	"context"
	"encoding/json"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	kvstorepb "kvstore/proto"
)

// startBaseline serves the baseline on a loopback port until cleanup.
func startBaseline(t *testing.T) string {
	t.Helper()
	addr, stop, err := startBaselineInProcess()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop() })
	return addr
}

func startBaselineInProcess() (string, func() error, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := newBaselineServer()
	served := make(chan struct{})
	go func() {
		srv.Serve(lis)
		close(served)
	}()
	return lis.Addr().String(), func() error {
		srv.Stop()
		<-served
		return nil
	}, nil
}

func TestBaselineRoundTrip(t *testing.T) {
	addr := startBaseline(t)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	kv := kvstorepb.NewKVStoreClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if r, err := kv.Set(ctx, &kvstorepb.SetRequest{Key: "a", Value: "1"}); err != nil || !r.GetSuccess() {
		t.Fatalf("Set: %v, %v", r, err)
	}
	if r, err := kv.Get(ctx, &kvstorepb.GetRequest{Key: "a"}); err != nil || !r.GetFound() || r.GetValue() != "1" {
		t.Fatalf("Get: %v, %v", r, err)
	}
	if r, err := kv.Delete(ctx, &kvstorepb.DeleteRequest{Key: "a"}); err != nil || !r.GetSuccess() || !r.GetDeleted() {
		t.Fatalf("Delete: %v, %v", r, err)
	}
	if r, err := kv.Get(ctx, &kvstorepb.GetRequest{Key: "a"}); err != nil || r.GetFound() {
		t.Fatalf("Get after Delete: %v, %v", r, err)
	}
	if r, err := kv.Delete(ctx, &kvstorepb.DeleteRequest{Key: "a"}); err != nil || !r.GetSuccess() || r.GetDeleted() {
		t.Fatalf("Delete of a missing key: %v, %v", r, err)
	}
	if _, err := kv.Set(ctx, &kvstorepb.SetRequest{Key: "", Value: "1"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("Set of an empty key: %v, want InvalidArgument", err)
	}
	if _, err := kv.Set(ctx, &kvstorepb.SetRequest{Key: "a", TtlSeconds: -1}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("Set with a negative TTL: %v, want InvalidArgument", err)
	}
	if r, err := kv.Set(ctx, &kvstorepb.SetRequest{Key: "t", Value: "v", TtlSeconds: 60}); err != nil || !r.GetSuccess() {
		t.Fatalf("Set with TTL: %v, %v", r, err)
	}
	if r, err := kv.Get(ctx, &kvstorepb.GetRequest{Key: "t"}); err != nil || !r.GetFound() {
		t.Fatalf("Get of a key with a TTL to come: %v, %v", r, err)
	}
}

func TestBaselineHidesExpiredKeys(t *testing.T) {
	b := &baselineStore{m: map[string]baselineEntry{}}
	ctx := context.Background()
	b.m["old"] = baselineEntry{value: "v", deadline: time.Now().Add(-time.Second).UnixNano()}
	if r, _ := b.Get(ctx, &kvstorepb.GetRequest{Key: "old"}); r.GetFound() {
		t.Error("Get returned an expired key")
	}
	if r, _ := b.Delete(ctx, &kvstorepb.DeleteRequest{Key: "old"}); r.GetDeleted() {
		t.Error("Delete reported an expired key as deleted")
	}
}

func TestBenchAgainstBaselineOverGRPC(t *testing.T) {
	addr := startBaseline(t)
	code, out, errOut := runBench(t, "--addr", addr, "--requests", "300", "--clients", "6", "--conns", "2",
		"--keys", "20", "--mix", "50:30:20", "--dist", "zipf", "--json", "--value-size", "100")
	if code != exitOK {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	var rep report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.Mode != "grpc" || rep.Addr != addr || rep.Conns != 2 || rep.Total.Count != 300 || rep.Total.Errors != 0 {
		t.Errorf("report %+v", rep)
	}
}

func TestServeBaselineUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut safeBuffer
	done := make(chan int, 1)
	go func() { done <- serveBaseline(ctx, "127.0.0.1:0", &out, &errOut) }()
	cancel()
	if code := <-done; code != exitOK {
		t.Errorf("exit %d, stderr %s", code, errOut.String())
	}

	if code := serveBaseline(context.Background(), "256.0.0.1:1", &out, &errOut); code != exitFailed {
		t.Errorf("bad address: exit %d, want %d", code, exitFailed)
	}
}
