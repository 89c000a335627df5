package rpc

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"kvstore/actor"
	kvstorepb "kvstore/proto"
)

// fakeReplica is a Replica: the leader holds a map, a follower refuses
// what needs the leader and serves stale reads from its own map.
type fakeReplica struct {
	leader   bool
	leaderID string
	addr     string // the leader's client address, "" if unknown

	// next, if set, is the leader from the second Leader call on.
	next        func() (id, addr string)
	leaderCalls int

	mu   sync.Mutex
	data map[string]string
	md   []metadata.MD // incoming metadata of the calls that ran here
}

func (f *fakeReplica) seen(ctx context.Context) {
	md, _ := metadata.FromIncomingContext(ctx)
	f.mu.Lock()
	f.md = append(f.md, md)
	f.mu.Unlock()
}

func (f *fakeReplica) Set(ctx context.Context, key, value string, ttl time.Duration) error {
	if !f.leader {
		return actor.ErrNotLeader
	}
	f.seen(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.data[key] = value
	return nil
}

func (f *fakeReplica) Delete(ctx context.Context, key string) (bool, error) {
	if !f.leader {
		return false, actor.ErrNotLeader
	}
	f.seen(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.data[key]
	delete(f.data, key)
	return ok, nil
}

func (f *fakeReplica) Get(ctx context.Context, key string, stale bool) (string, bool, error) {
	if !f.leader && !stale {
		return "", false, actor.ErrNotLeader
	}
	f.seen(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.data[key]
	return v, ok, nil
}

func (f *fakeReplica) Leader(ctx context.Context) (string, string, error) {
	f.mu.Lock()
	f.leaderCalls++
	if f.next != nil && f.leaderCalls > 1 {
		f.leaderID, f.addr = f.next()
	}
	f.mu.Unlock()
	if f.leaderID == "" {
		<-ctx.Done()
		return "", "", ctx.Err()
	}
	return f.leaderID, f.addr, nil
}

// serveReplica serves r on a loopback port and returns its address and a
// client.
func serveReplica(t *testing.T, r Replica) (string, kvstorepb.KVStoreClient) {
	t.Helper()
	fwd := NewForwarder(grpc.WithTransportCredentials(insecure.NewCredentials()))
	t.Cleanup(fwd.Close)
	svc := NewService(nil, Options{})
	svc.AttachReplica(r, fwd)
	srv := NewServer(svc, ServerOptions{})
	var addr string
	conn := serveLoopback(t, func(l net.Listener) error {
		return srv.Serve(l)
	}, stopNow(srv))
	addr = conn.Target()
	return addr, kvstorepb.NewKVStoreClient(conn)
}

// A follower passes writes and linearizable reads to the leader, with the
// caller's token, once; it serves stale reads itself.
func TestFollowerForwardsToTheLeader(t *testing.T) {
	leader := &fakeReplica{leader: true, leaderID: "n1", data: map[string]string{}}
	leaderAddr, _ := serveReplica(t, leader)
	leader.addr = leaderAddr
	follower := &fakeReplica{leaderID: "n1", addr: leaderAddr, data: map[string]string{"k": "stale value"}}
	_, fc := serveReplica(t, follower)

	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer t0ken")
	if _, err := fc.Set(ctx, &kvstorepb.SetRequest{Key: "k", Value: "v"}); err != nil {
		t.Fatal(err)
	}
	if got, err := fc.Get(ctx, &kvstorepb.GetRequest{Key: "k"}); err != nil || got.GetValue() != "v" {
		t.Fatalf("linearizable Get through the follower = %v, %v; want the leader's v", got, err)
	}
	stale := metadata.AppendToOutgoingContext(ctx, ReadLevelKey, "stale")
	if got, err := fc.Get(stale, &kvstorepb.GetRequest{Key: "k"}); err != nil || got.GetValue() != "stale value" {
		t.Fatalf("stale Get = %v, %v; want the follower's own value", got, err)
	}
	if got, err := fc.Delete(ctx, &kvstorepb.DeleteRequest{Key: "k"}); err != nil || !got.GetDeleted() {
		t.Fatalf("Delete through the follower = %v, %v", got, err)
	}
	leader.mu.Lock()
	defer leader.mu.Unlock()
	if len(leader.md) != 3 {
		t.Fatalf("the leader ran %d calls; want 3 (set, get, delete)", len(leader.md))
	}
	for _, md := range leader.md {
		if a := md.Get("authorization"); len(a) != 1 || a[0] != "Bearer t0ken" || len(md.Get(forwardedKey)) != 1 {
			t.Errorf("forwarded call carried %v; want the token and the forwarded mark", md)
		}
	}
}

// A request is forwarded once: a second follower that thinks the first
// one leads refuses it. No leader within the deadline is Unavailable.
func TestForwardingRefusals(t *testing.T) {
	a := &fakeReplica{leaderID: "b", data: map[string]string{}}
	aAddr, ac := serveReplica(t, a)
	b := &fakeReplica{leaderID: "a", addr: aAddr, data: map[string]string{}}
	bAddr, _ := serveReplica(t, b)
	a.addr = bAddr // each takes the other for the leader
	_, err := ac.Set(context.Background(), &kvstorepb.SetRequest{Key: "k", Value: "v"})
	wantCode(t, err, codes.Unavailable, "leadership is moving")

	none := &fakeReplica{data: map[string]string{}}
	_, nc := serveReplica(t, none)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = nc.Set(ctx, &kvstorepb.SetRequest{Key: "k", Value: "v"})
	wantCode(t, err, codes.Unavailable, "no leader")

	noAddr := &fakeReplica{leaderID: "n9", data: map[string]string{}}
	_, xc := serveReplica(t, noAddr)
	_, err = xc.Get(context.Background(), &kvstorepb.GetRequest{Key: "k"})
	wantCode(t, err, codes.Unavailable, "has not published its client address")
}

// A leader that died is not sent the request: the follower waits for the
// next leader and sends it there.
func TestForwardingWaitsOutADeadLeader(t *testing.T) {
	live := &fakeReplica{leader: true, leaderID: "n2", data: map[string]string{}}
	liveAddr, _ := serveReplica(t, live)
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close() // nothing listens there any more
	follower := &fakeReplica{leaderID: "n1", addr: deadAddr, data: map[string]string{},
		next: func() (string, string) { return "n2", liveAddr }}
	_, fc := serveReplica(t, follower)
	if _, err := fc.Set(context.Background(), &kvstorepb.SetRequest{Key: "k", Value: "v"}); err != nil {
		t.Fatalf("Set while the leader moves: %v", err)
	}
	live.mu.Lock()
	defer live.mu.Unlock()
	if live.data["k"] != "v" {
		t.Fatalf("the new leader holds %v", live.data)
	}
}
