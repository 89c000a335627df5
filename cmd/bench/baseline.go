package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	kvstorepb "kvstore/proto"
)

// baselineStore is the gRPC ceiling kvstore is measured against: the same
// kvstore.v1.KVStore API served by plain grpc-go over a map behind a
// sync.RWMutex, and nothing else: no actor, no log, no health service, no
// limits beyond grpc-go's defaults. Whatever kvstore costs beyond it is the
// price of its design and its durability.
//
// TTLs are stored naively as an absolute deadline that Get checks; expired
// keys are never removed.
type baselineStore struct {
	kvstorepb.UnimplementedKVStoreServer

	mu sync.RWMutex
	m  map[string]baselineEntry
}

type baselineEntry struct {
	value    string
	deadline int64 // Unix nanoseconds; 0 = never
}

func (e baselineEntry) live(now int64) bool { return e.deadline == 0 || now < e.deadline }

// newBaselineServer returns a grpc.Server with a fresh baselineStore
// registered, not yet serving.
func newBaselineServer() *grpc.Server {
	s := grpc.NewServer()
	kvstorepb.RegisterKVStoreServer(s, &baselineStore{m: map[string]baselineEntry{}})
	return s
}

// Set validates like kvstore does (empty key, negative TTL), so that a
// workload's errors match across the two servers.
func (b *baselineStore) Set(_ context.Context, req *kvstorepb.SetRequest) (*kvstorepb.SetResponse, error) {
	if req.GetKey() == "" {
		return nil, status.Error(codes.InvalidArgument, "key must not be empty")
	}
	if req.GetTtlSeconds() < 0 {
		return nil, status.Error(codes.InvalidArgument, "ttl_seconds must not be negative")
	}
	e := baselineEntry{value: req.GetValue()}
	if ttl := req.GetTtlSeconds(); ttl > 0 {
		e.deadline = time.Now().Add(time.Duration(ttl) * time.Second).UnixNano()
	}
	b.mu.Lock()
	b.m[req.GetKey()] = e
	b.mu.Unlock()
	return &kvstorepb.SetResponse{Success: true}, nil
}

func (b *baselineStore) Get(_ context.Context, req *kvstorepb.GetRequest) (*kvstorepb.GetResponse, error) {
	if req.GetKey() == "" {
		return nil, status.Error(codes.InvalidArgument, "key must not be empty")
	}
	b.mu.RLock()
	e, ok := b.m[req.GetKey()]
	b.mu.RUnlock()
	if !ok || (e.deadline != 0 && !e.live(time.Now().UnixNano())) {
		return &kvstorepb.GetResponse{}, nil
	}
	return &kvstorepb.GetResponse{Found: true, Value: e.value}, nil
}

func (b *baselineStore) Delete(_ context.Context, req *kvstorepb.DeleteRequest) (*kvstorepb.DeleteResponse, error) {
	if req.GetKey() == "" {
		return nil, status.Error(codes.InvalidArgument, "key must not be empty")
	}
	b.mu.Lock()
	e, ok := b.m[req.GetKey()]
	delete(b.m, req.GetKey())
	b.mu.Unlock()
	deleted := ok && (e.deadline == 0 || e.live(time.Now().UnixNano()))
	return &kvstorepb.DeleteResponse{Success: true, Deleted: deleted}, nil
}

// serveBaseline is --serve-baseline: it serves the baseline on addr until
// ctx ends (SIGINT/SIGTERM), then stops gracefully within a few seconds.
func serveBaseline(ctx context.Context, addr string, stdout, stderr io.Writer) int {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(stderr, "kvstore-bench: baseline: %v\n", err)
		return exitFailed
	}
	srv := newBaselineServer()
	fmt.Fprintf(stdout, "baseline: serving kvstore.v1.KVStore (plain grpc-go over a mutex-guarded map) on %s\n", lis.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	select {
	case err := <-errc:
		fmt.Fprintf(stderr, "kvstore-bench: baseline: %v\n", err)
		return exitFailed
	case <-ctx.Done():
	}
	stopGracefully(srv, 5*time.Second)
	<-errc
	return exitOK
}

// stopGracefully lets in-flight RPCs finish for up to grace, then cancels
// them.
func stopGracefully(srv *grpc.Server, grace time.Duration) {
	t := time.AfterFunc(grace, srv.Stop)
	srv.GracefulStop()
	t.Stop()
}
