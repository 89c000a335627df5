package main

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"kvstore/actor"
	kvstorepb "kvstore/proto"
	"kvstore/rpc"
)

// clusterBackend is a leader's cluster half that records the changes it
// is asked for.
type clusterBackend struct {
	mu      sync.Mutex
	changes []string
}

func (b *clusterBackend) ClusterStatus(context.Context) (*kvstorepb.ClusterStatusResponse, error) {
	// The node asked is n2, a follower: the client shows what it says
	// (Admin would ask the leader; no other node runs here).
	return &kvstorepb.ClusterStatusResponse{NodeId: "n2", State: "follower", LeaderId: "n1", Term: 7, CommitIndex: 100, AppliedIndex: 98,
		Members: []*kvstorepb.ClusterMember{
			{Id: "n3", RaftAddress: "127.0.0.1:7003", Suffrage: "nonvoter", LastContactSeconds: -1},
			{Id: "n1", RaftAddress: "127.0.0.1:7001", ClientAddress: "127.0.0.1:50051", Suffrage: "voter", Leader: true, AppliedIndex: 100},
			{Id: "n2", RaftAddress: "127.0.0.1:7002", ClientAddress: "127.0.0.1:50052", Suffrage: "voter", AppliedIndex: 98, LastContactSeconds: 0.25},
		}}, nil
}

func (b *clusterBackend) record(s string) (*kvstorepb.MembershipResponse, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.changes = append(b.changes, s)
	return &kvstorepb.MembershipResponse{LeaderId: "n1", Index: uint64(40 + len(b.changes))}, nil
}

func (b *clusterBackend) AddMember(_ context.Context, id, raftAddr, clientAddr string, nonvoter bool) (*kvstorepb.MembershipResponse, error) {
	kind := "voter"
	if nonvoter {
		kind = "nonvoter"
	}
	return b.record("add " + id + " " + raftAddr + " " + kind)
}

func (b *clusterBackend) RemoveMember(_ context.Context, id string) (*kvstorepb.MembershipResponse, error) {
	return b.record("remove " + id)
}

func (b *clusterBackend) TransferLeader(_ context.Context, id string) (*kvstorepb.MembershipResponse, error) {
	return b.record("transfer " + id)
}

func (b *clusterBackend) PublishMember(_ context.Context, id, addr string) (*kvstorepb.MembershipResponse, error) {
	return b.record("publish " + id + " " + addr)
}

func (b *clusterBackend) Leader(context.Context) (string, string, error) { return "n1", "", nil }

// startClusterAdmin serves an Admin service with a cluster half.
func startClusterAdmin(t *testing.T) (string, *clusterBackend) {
	t.Helper()
	cb := &clusterBackend{}
	a := actor.New(actor.Config{ExpireInterval: -1})
	admin := rpc.NewAdmin(nil)
	admin.Attach(&testBackend{a: a})
	fwd := rpc.NewForwarder()
	t.Cleanup(fwd.Close)
	admin.AttachCluster(cb, fwd)
	return startServerActor(t, a, rpc.Options{}, rpc.ServerOptions{Admin: admin}), cb
}

// cluster status prints the members in ID order with their lag behind
// the commit index; add, remove and transfer-leader reach the backend.
func TestClusterCommands(t *testing.T) {
	addr, cb := startClusterAdmin(t)
	code, out, errOut := runClient(t, addr, "cluster", "status")
	if code != 0 {
		t.Fatalf("cluster status: exit %d, %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if !strings.Contains(lines[0], "answered by n2 (follower); leader n1; term 7; commit index 100, applied 98") || len(lines) != 6 {
		t.Fatalf("cluster status:\n%s", out)
	}
	for i, want := range []string{"n1  leader    voter", "n2  follower  voter", "n3  follower  nonvoter"} {
		if !strings.HasPrefix(lines[3+i], want) {
			t.Errorf("row %d %q; want it to start %q", i, lines[3+i], want)
		}
	}
	if f := strings.Fields(lines[4]); f[5] != "98" || f[6] != "2" || f[7] != "250ms" {
		t.Errorf("n2's row %q; want applied 98, lag 2, contact 250ms ago", lines[4])
	}
	if f := strings.Fields(lines[5]); f[4] != "-" || f[5] != "?" {
		t.Errorf("n3's row %q; want no client address and unknown progress", lines[5])
	}
	code, out, _ = runClient(t, addr, "cluster", "status", "--json")
	var st map[string]any
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil || st["leader_id"] != "n1" {
		t.Fatalf("cluster status --json: exit %d, %v, %s", code, err, out)
	}
	for _, args := range [][]string{
		{"cluster", "add", "n4", "127.0.0.1:7004", "--nonvoter"},
		{"cluster", "remove", "n3"},
		{"cluster", "transfer-leader", "n2"},
		{"cluster", "transfer-leader"},
	} {
		if code, out, errOut := runClient(t, addr, args...); code != 0 || !strings.Contains(out, "n1") {
			t.Errorf("%q: exit %d, %q, %q", args, code, out, errOut)
		}
	}
	want := []string{"add n4 127.0.0.1:7004 nonvoter", "remove n3", "transfer n2", "transfer "}
	if strings.Join(cb.changes, "|") != strings.Join(want, "|") {
		t.Errorf("backend got %q; want %q", cb.changes, want)
	}
	for _, args := range [][]string{
		{"cluster"}, {"cluster", "bogus"}, {"cluster", "add", "n4"}, {"cluster", "remove"},
		{"cluster", "status", "--nonvoter"}, {"get", "k", "--nonvoter"},
	} {
		if code, _, errOut := runClient(t, addr, args...); code != 2 || !strings.Contains(errOut, "Run 'kvstore-client --help'") {
			t.Errorf("%q: exit %d, %q; want a usage error", args, code, errOut)
		}
	}
}
