package server

import (
	"context"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	kvstorepb "kvstore/proto"
)

// clusterConfig is a one-node cluster on loopback ports.
func clusterConfig(t *testing.T) Config {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	raftAddr := l.Addr().String()
	l.Close()
	c := DefaultConfig()
	c.Listen = "127.0.0.1:0"
	c.RESPListen = "127.0.0.1:0"
	c.DataDir = t.TempDir()
	c.NodeID = "n1"
	c.RaftListen = raftAddr
	c.InitialCluster = "n1=" + raftAddr
	c.GCHeapFloor = 0
	c.Logger = slog.New(slog.DiscardHandler)
	return c
}

// A cluster node is SERVING once it leads (here, alone), serves writes,
// and exports the raft metrics README's "Cluster metrics" table lists,
// exactly those beside the single node's.
func TestClusterNodeHealthAndMetrics(t *testing.T) {
	c := clusterConfig(t)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	r := startRun(t, c)
	ctx := context.Background()
	watch, err := healthpb.NewHealthClient(r.conn).Watch(ctx, &healthpb.HealthCheckRequest{Service: kvstorepb.KVStore_ServiceDesc.ServiceName})
	if err != nil {
		t.Fatal(err)
	}
	for {
		m, err := watch.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if m.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			break
		}
	}
	if _, err := r.kv.Set(ctx, &kvstorepb.SetRequest{Key: "k", Value: "v"}); err != nil {
		t.Fatal(err)
	}
	if got, err := r.kv.Get(ctx, &kvstorepb.GetRequest{Key: "k"}); err != nil || got.GetValue() != "v" {
		t.Fatalf("Get = %v, %v", got, err)
	}
	text := httpDo(t, http.MethodGet, "http://"+r.s.HTTPAddr().String()+"/metrics", "")
	_, families := seriesNames(t, text)
	raft := map[string]bool{}
	for name := range families {
		if strings.HasPrefix(name, "kvstore_raft_") {
			raft[name] = true
		}
	}
	// A leader hears from no leader: it leaves out its last contact.
	raft["kvstore_raft_last_contact_seconds"] = true
	if want := readmeTable(t, "../README.md", "Cluster metrics"); !maps.Equal(raft, want) {
		t.Errorf("exported raft metrics %v; README's Cluster metrics table lists %v", slices.Sorted(maps.Keys(raft)), slices.Sorted(maps.Keys(want)))
	}
	// At least the set (the leader's own member entry may be a second).
	if !strings.Contains(string(text), "\nkvstore_raft_leader 1\n") || !regexp.MustCompile(`\nkvstore_raft_apply_duration_seconds_count [1-9]`).Match(text) {
		t.Errorf("want kvstore_raft_leader 1 and the set's apply observed:\n%s", text)
	}
}

// A node that cannot reach a quorum knows no leader: health says
// NOT_SERVING, and a write is Unavailable "no leader" within its
// deadline, never acknowledged.
func TestClusterNodeWithoutQuorum(t *testing.T) {
	c := clusterConfig(t)
	c.InitialCluster += ",n2=127.0.0.1:1,n3=127.0.0.1:2" // nobody there
	r := startRun(t, c)
	ctx := context.Background()
	resp, err := healthpb.NewHealthClient(r.conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health = %v, %v; want NOT_SERVING", resp, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, err = r.kv.Set(wctx, &kvstorepb.SetRequest{Key: "k", Value: "v"})
	if s, _ := status.FromError(err); s.Code() != codes.Unavailable || !strings.Contains(s.Message(), "no leader") {
		t.Fatalf("Set without a quorum: %v; want Unavailable, no leader", err)
	}
}
