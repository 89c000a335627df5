package server_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	kvstorepb "kvstore/proto"
	"kvstore/server"
)

// Embedding kvstore in a Go program: a server on a free loopback port with
// its data in a temporary directory, one Set and Get over gRPC, and an
// orderly shutdown.
func Example() {
	dir, err := os.MkdirTemp("", "kvstore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	cfg := server.DefaultConfig()
	cfg.DataDir = dir
	cfg.Listen = "127.0.0.1:0"
	cfg.RESPListen = "127.0.0.1:0"
	cfg.GCHeapFloor = 0 // leave the host program's GC settings alone
	cfg.Logger = slog.New(slog.DiscardHandler)
	s, err := server.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Run(context.Background()) }()
	<-s.Ready()

	conn, err := grpc.NewClient(s.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	kv := kvstorepb.NewKVStoreClient(conn)
	ctx := context.Background()
	if _, err := kv.Set(ctx, &kvstorepb.SetRequest{Key: "greeting", Value: "hello"}); err != nil {
		log.Fatal(err)
	}
	got, err := kv.Get(ctx, &kvstorepb.GetRequest{Key: "greeting"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(got.GetValue())
	conn.Close()

	s.Close()
	if err := <-errc; err != nil {
		log.Fatal(err)
	}
	// Output: hello
}
