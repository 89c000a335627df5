package main

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"kvstore/actor"
	"kvstore/redisfront"
)

// --redis drives a Redis-protocol server: here kvstore's own front over
// an actor, on loopback; the bench's writes are in the actor afterwards.
func TestRedisDrivesTheRESPFront(t *testing.T) {
	a := actor.New(actor.Config{})
	defer a.Stop()
	b := redisfront.NewActorBackend(nil)
	b.Set(a)
	srv := redisfront.NewServer(redisfront.Config{Backend: b})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-served
	}()
	addr := lis.Addr().String()

	code, out, errOut := runBench(t, "--redis", "--addr", addr, "--requests", "300", "--clients", "4",
		"--keys", "20", "--mix", "50:30:20", "--value-size", "24", "--preload", "--ttl", "1h", "--json", "--progress", "0")
	if code != exitOK {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	var rep report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.Mode != "redis" || rep.Conns != 4 || rep.Total.Count != 300 || rep.Total.Errors != 0 || len(rep.Ops) != 3 {
		t.Errorf("report %+v; want mode redis, 4 conns, 300 ok, 3 ops", rep)
	}
	if !strings.Contains(errOut, "Redis protocol (go-redis) at "+addr) {
		t.Errorf("stderr %q does not name the Redis target", errOut)
	}
	// The preload set every key; the deletes removed some since.
	st := a.Stats()
	if st.Keys == 0 || st.Keys > 20 {
		t.Errorf("actor holds %d keys after the run; want 1-20", st.Keys)
	}
	if code, _, errOut := runBench(t, "--redis", "--etcd", "--addr", addr); code != exitUsage || !strings.Contains(errOut, "--redis") {
		t.Errorf("--redis --etcd: exit %d, %s", code, errOut)
	}
}
