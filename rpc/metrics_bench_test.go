package rpc

import (
	"context"
	"strconv"
	"testing"

	"google.golang.org/grpc"

	"kvstore/actor"
	kvstorepb "kvstore/proto"
)

// BenchmarkMetricsInterceptor is the cost the gRPC metrics add to every
// unary call, alone: what docs/BENCHMARKS.md compares across interceptors.
func BenchmarkMetricsInterceptor(b *testing.B) {
	intercept := NewMetrics(nil).UnaryInterceptor()
	info := &grpc.UnaryServerInfo{FullMethod: "/kvstore.v1.KVStore/Set"}
	handler := func(context.Context, any) (any, error) { return nil, nil }
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := intercept(ctx, nil, info, handler); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGRPCSet is Set over loopback gRPC from 8 goroutines per CPU,
// through the metrics interceptor as the server installs it, on an actor
// without a log: client and server together, so ns/op and allocs/op
// count both sides.
func BenchmarkGRPCSet(b *testing.B) {
	a := actor.New(actor.Config{ExpireInterval: -1})
	b.Cleanup(a.Stop)
	srv := NewServer(NewService(a, Options{}), ServerOptions{Unary: []grpc.UnaryServerInterceptor{NewMetrics(nil).UnaryInterceptor()}})
	client := kvstorepb.NewKVStoreClient(serveLoopback(b, srv.Serve, stopNow(srv)))
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for i := 0; pb.Next(); i++ {
			if _, err := client.Set(ctx, &kvstorepb.SetRequest{Key: strconv.Itoa(i % 1000), Value: "v"}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
