package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	kvstorepb "kvstore/proto"
	"kvstore/rpc"
)

var killCycles = flag.Int("kill-cycles", 10, "leader kills in TestClusterSurvivesLeaderKills (100 for the long run)")

// freePorts returns n loopback ports free a moment ago, for raft
// addresses, which every node must know before any starts.
func freePorts(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		out = append(out, l.Addr().String())
	}
	for _, l := range ls {
		l.Close()
	}
	return out
}

// testNode is one kvstore-server process of a test cluster.
type testNode struct {
	id   string
	args []string
	proc *serverProcess
	kv   kvstorepb.KVStoreClient
	dial []grpc.DialOption // the client's; nil: plaintext
}

// startCluster starts n nodes of a new cluster on loopback.
func startCluster(t *testing.T, n int, extra ...string) []*testNode {
	t.Helper()
	return startClusterDial(t, n, nil, extra...)
}

// startClusterDial is startCluster with the clients' dial options.
func startClusterDial(t *testing.T, n int, dial []grpc.DialOption, extra ...string) []*testNode {
	t.Helper()
	raftAddrs := freePorts(t, n)
	var members []string
	for i, a := range raftAddrs {
		members = append(members, fmt.Sprintf("n%d=%s", i+1, a))
	}
	var nodes []*testNode
	for i, a := range raftAddrs {
		id := fmt.Sprintf("n%d", i+1)
		nodes = append(nodes, &testNode{id: id, args: []string{
			"--node-id", id, "--raft-listen", a, "--initial-cluster", strings.Join(members, ","),
			"--data-dir", filepath.Join(t.TempDir(), id),
		}})
		nodes[len(nodes)-1].args = append(nodes[len(nodes)-1].args, extra...)
		nodes[len(nodes)-1].dial = dial
	}
	for _, nd := range nodes {
		nd.start(t)
	}
	return nodes
}

func (nd *testNode) start(t *testing.T) {
	t.Helper()
	nd.proc = startBinary(t, nd.args...)
	if nd.dial != nil {
		conn, err := grpc.NewClient(nd.proc.addr, nd.dial...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		nd.kv = kvstorepb.NewKVStoreClient(conn)
		return
	}
	nd.kv = dial(t, nd.proc.addr)
}

// state is the node's raft state by its log's last transition: "leader",
// "follower", "candidate" or "".
func (nd *testNode) state() string {
	log := nd.proc.stderr.String()
	best, state := -1, ""
	for _, s := range []string{"leader", "follower", "candidate"} {
		if i := strings.LastIndex(log, "entering "+s+" state"); i > best {
			best, state = i, s
		}
	}
	return state
}

// leaderOf waits until exactly one live node says it is the leader and
// a linearizable read through it answers.
func leaderOf(t *testing.T, nodes []*testNode, dead *testNode) *testNode {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		var leaders []*testNode
		for _, nd := range nodes {
			if nd != dead && nd.state() == "leader" {
				leaders = append(leaders, nd)
			}
		}
		if len(leaders) == 1 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err := leaders[0].kv.Get(ctx, &kvstorepb.GetRequest{Key: "probe"})
			cancel()
			if err == nil {
				return leaders[0]
			}
		}
		// Each pass asks a real server; nothing here sleeps.
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		for _, nd := range nodes {
			if nd != dead {
				nd.kv.Get(ctx, &kvstorepb.GetRequest{Key: "probe"})
			}
		}
		cancel()
	}
	t.Fatal("no single leader within 20s")
	return nil
}

// Three real processes on loopback; the leader is SIGKILLed under a
// concurrent write load, over and over, and restarted. Every write that
// was acknowledged (through any node, forwarded to the leader) is there
// with its value on every node at the end. Writes in flight at a kill may
// fail (Unavailable), never succeed unseen.
func TestClusterSurvivesLeaderKills(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills processes")
	}
	nodes := startCluster(t, 3)
	leaderOf(t, nodes, nil)

	var (
		mu    sync.Mutex
		acked = map[string]string{}
		live  = slices.Clone(nodes) // the nodes writers may use
		stop  = make(chan struct{})
		wg    sync.WaitGroup
		// killedAt is the last kill; recovered, once set, is how long
		// after it the first write begun after it was acknowledged.
		killedAt  time.Time
		recovered time.Duration
	)
	pick := func(i int) *testNode {
		mu.Lock()
		defer mu.Unlock()
		return live[i%len(live)]
	}
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k, v := fmt.Sprintf("w%d/%d", w, i), fmt.Sprintf("v%d", i)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				begun := time.Now()
				_, err := pick(w+i).kv.Set(ctx, &kvstorepb.SetRequest{Key: k, Value: v})
				cancel()
				if err == nil {
					mu.Lock()
					acked[k] = v
					if !killedAt.IsZero() && begun.After(killedAt) && recovered == 0 {
						recovered = time.Since(killedAt)
					}
					mu.Unlock()
				}
			}
		})
	}
	acks := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	var failovers []time.Duration
	for cycle := range *killCycles {
		// Some writes under this leader first.
		for want := acks() + 200; acks() < want; {
			leaderOf(t, nodes, nil)
		}
		leader := leaderOf(t, nodes, nil)
		mu.Lock()
		live = slices.DeleteFunc(slices.Clone(nodes), func(nd *testNode) bool { return nd == leader })
		mu.Unlock()
		mu.Lock()
		killedAt, recovered = time.Now(), 0
		mu.Unlock()
		leader.proc.cmd.Process.Signal(syscall.SIGKILL)
		leader.proc.wait()
		next := leaderOf(t, nodes, leader)
		for {
			mu.Lock()
			took := recovered
			mu.Unlock()
			if took != 0 {
				failovers = append(failovers, took)
				break
			}
			leaderOf(t, nodes, leader)
		}
		leader.start(t)
		mu.Lock()
		live = slices.Clone(nodes)
		mu.Unlock()
		t.Logf("cycle %d: killed %s, %s leads, first write after %v, %d acked", cycle+1, leader.id, next.id, failovers[len(failovers)-1], acks())
	}
	close(stop)
	wg.Wait()

	// Every node, restarted ones included, holds every acknowledged write.
	leader := leaderOf(t, nodes, nil)
	ctx := context.Background()
	if _, err := leader.kv.Set(ctx, &kvstorepb.SetRequest{Key: "fence", Value: "last"}); err != nil {
		t.Fatal(err)
	}
	staleCtx := func() (context.Context, context.CancelFunc) {
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		return metadataStale(c), cancel
	}
	for _, nd := range nodes {
		for deadline := time.Now().Add(20 * time.Second); ; {
			c, cancel := staleCtx()
			r, err := nd.kv.Get(c, &kvstorepb.GetRequest{Key: "fence"})
			cancel()
			if err == nil && r.GetFound() {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not catch up: %v %v", nd.id, r, err)
			}
		}
		mu.Lock()
		for k, v := range acked {
			c, cancel := staleCtx()
			r, err := nd.kv.Get(c, &kvstorepb.GetRequest{Key: k})
			cancel()
			if err != nil || r.GetValue() != v {
				mu.Unlock()
				t.Fatalf("%s: acknowledged %s = %q; got %v, %v", nd.id, k, v, r, err)
			}
		}
		mu.Unlock()
	}
	slices.Sort(failovers)
	t.Logf("%d kills, %d acknowledged writes all present on all 3 nodes; kill to first acknowledged write: median %v, max %v",
		len(failovers), len(acked), failovers[len(failovers)/2], failovers[len(failovers)-1])
}

// metadataStale asks for a stale read: the node's own applied data.
func metadataStale(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "kvstore-read", "stale")
}

// clusterStatus asks nd for the cluster's status.
func clusterStatus(t *testing.T, nd *testNode) *kvstorepb.ClusterStatusResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := kvstorepb.NewAdminClient(dialConn(t, nd.proc.addr)).ClusterStatus(ctx, &kvstorepb.ClusterStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// A node started with --join becomes a member (a nonvoter here) and
// gets the data; every member's client address reaches every node;
// membership changes sent to a follower reach the leader.
func TestClusterJoinAndMembership(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	nodes := startCluster(t, 3)
	leader := leaderOf(t, nodes, nil)
	ctx := context.Background()
	if _, err := nodes[0].kv.Set(ctx, &kvstorepb.SetRequest{Key: "before", Value: "join"}); err != nil {
		t.Fatal(err)
	}
	raft4 := freePorts(t, 1)[0]
	n4 := &testNode{id: "n4", args: []string{"--node-id", "n4", "--raft-listen", raft4,
		"--join", nodes[1].proc.addr, "--join-as", "nonvoter", "--data-dir", filepath.Join(t.TempDir(), "n4")}}
	n4.start(t)
	n4.proc.waitLog(t, "joined the cluster", "")
	// The joined node serves the data (stale: it is a read replica).
	for deadline := time.Now().Add(10 * time.Second); ; {
		r, err := n4.kv.Get(metadataStale(ctx), &kvstorepb.GetRequest{Key: "before"})
		if err == nil && r.GetValue() == "join" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("n4 never served the data: %v %v", r, err)
		}
	}
	var st *kvstorepb.ClusterStatusResponse
	for deadline := time.Now().Add(10 * time.Second); ; {
		st = clusterStatus(t, n4)
		published := 0
		for _, m := range st.GetMembers() {
			if m.GetClientAddress() != "" {
				published++
			}
		}
		if len(st.GetMembers()) == 4 && published == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status from n4 after 10s: %v", st)
		}
	}
	if st.GetLeaderId() != leader.id || st.GetState() != "leader" {
		t.Errorf("n4's status %v; want the leader %s's view", st, leader.id)
	}
	for _, m := range st.GetMembers() {
		if (m.GetId() == "n4") != (m.GetSuffrage() == "nonvoter") {
			t.Errorf("member %v", m)
		}
	}
	follower := nodes[0]
	if follower == leader {
		follower = nodes[1]
	}
	admin := kvstorepb.NewAdminClient(dialConn(t, follower.proc.addr))
	if _, err := admin.RemoveMember(ctx, &kvstorepb.RemoveMemberRequest{Id: "n4"}); err != nil {
		t.Fatalf("RemoveMember through a follower: %v", err)
	}
	if got := len(clusterStatus(t, follower).GetMembers()); got != 3 {
		t.Errorf("%d members after removing n4", got)
	}
	resp, err := admin.TransferLeader(ctx, &kvstorepb.TransferLeaderRequest{Id: follower.id})
	if err != nil || resp.GetLeaderId() != follower.id {
		t.Fatalf("TransferLeader to %s: %v, %v", follower.id, resp, err)
	}
	if next := leaderOf(t, nodes, nil); next != follower {
		t.Fatalf("leader %s after the transfer to %s", next.id, follower.id)
	}
}

// flagValue is the value after flag in args.
func flagValue(args []string, flag string) string {
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// A cluster that lost two of three nodes for good comes back, from the
// survivor's data, after `kvstore-server cluster recover` makes it the
// only member.
func TestClusterRecoverFromLostQuorum(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	nodes := startCluster(t, 3)
	leader := leaderOf(t, nodes, nil)
	ctx := context.Background()
	for i := range 50 {
		if _, err := leader.kv.Set(ctx, &kvstorepb.SetRequest{Key: fmt.Sprintf("k%d", i), Value: "v"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, nd := range nodes {
		nd.proc.cmd.Process.Signal(syscall.SIGKILL)
		nd.proc.wait()
	}
	survivor := nodes[1]
	self := survivor.id + "=" + flagValue(survivor.args, "--raft-listen")
	code, out, errOut := subcommand(t, "cluster", "recover", "--data-dir", flagValue(survivor.args, "--data-dir"),
		"--node-id", survivor.id, "--members", self)
	if code != 0 || !strings.Contains(out, "recovered") {
		t.Fatalf("cluster recover: exit %d, %q, %q", code, out, errOut)
	}
	survivor.start(t)
	if got := leaderOf(t, []*testNode{survivor}, nil); got != survivor {
		t.Fatalf("leader %s", got.id)
	}
	for i := range 50 {
		r, err := survivor.kv.Get(ctx, &kvstorepb.GetRequest{Key: fmt.Sprintf("k%d", i)})
		if err != nil || r.GetValue() != "v" {
			t.Fatalf("k%d after recovery: %v, %v", i, r, err)
		}
	}
	if _, err := survivor.kv.Set(ctx, &kvstorepb.SetRequest{Key: "after", Value: "recovery"}); err != nil {
		t.Fatalf("a write after recovery: %v", err)
	}
	if st := clusterStatus(t, survivor); len(st.GetMembers()) != 1 {
		t.Errorf("members after recovery: %v", st.GetMembers())
	}
}

// A backup of a cluster restores, etcd style, into a new cluster: every
// member restored from the same file with the same members, then
// started, serves exactly the backup.
func TestClusterRestoreFromBackup(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	old := startCluster(t, 3)
	leader := leaderOf(t, old, nil)
	ctx := context.Background()
	for i := range 30 {
		if _, err := old[2].kv.Set(ctx, &kvstorepb.SetRequest{Key: fmt.Sprintf("k%d", i), Value: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	stream, err := kvstorepb.NewAdminClient(dialConn(t, leader.proc.addr)).Backup(ctx, &kvstorepb.BackupRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var data []byte
	for {
		m, err := stream.Recv()
		if err != nil {
			break
		}
		data = append(data, m.GetData()...)
	}
	bak := filepath.Join(t.TempDir(), "kv.bak")
	if err := os.WriteFile(bak, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := old[0].kv.Set(ctx, &kvstorepb.SetRequest{Key: "after", Value: "the backup"}); err != nil {
		t.Fatal(err)
	}
	for _, nd := range old {
		nd.proc.cmd.Process.Signal(syscall.SIGTERM)
		nd.proc.wait()
	}

	raftAddrs := freePorts(t, 3)
	var members []string
	for i, a := range raftAddrs {
		members = append(members, fmt.Sprintf("n%d=%s", i+1, a))
	}
	var fresh []*testNode
	for i, a := range raftAddrs {
		id, dir := fmt.Sprintf("n%d", i+1), filepath.Join(t.TempDir(), "new")
		code, out, errOut := subcommand(t, "restore", bak, "--data-dir", dir, "--node-id", id, "--initial-cluster", strings.Join(members, ","))
		if code != 0 || !strings.Contains(out, "--raft-listen "+a) {
			t.Fatalf("restore %s: exit %d, %q, %q", id, code, out, errOut)
		}
		fresh = append(fresh, &testNode{id: id, args: []string{"--node-id", id, "--raft-listen", a, "--data-dir", dir}})
	}
	for _, nd := range fresh {
		nd.start(t)
	}
	next := leaderOf(t, fresh, nil)
	for i := range 30 {
		r, err := fresh[i%3].kv.Get(ctx, &kvstorepb.GetRequest{Key: fmt.Sprintf("k%d", i)})
		if err != nil || r.GetValue() != fmt.Sprint(i) {
			t.Fatalf("k%d in the restored cluster: %v, %v", i, r, err)
		}
	}
	if r, err := next.kv.Get(ctx, &kvstorepb.GetRequest{Key: "after"}); err != nil || r.GetFound() {
		t.Fatalf("a write after the backup came back: %v, %v", r, err)
	}
	if _, err := fresh[1].kv.Set(ctx, &kvstorepb.SetRequest{Key: "new", Value: "cluster"}); err != nil {
		t.Fatal(err)
	}
	if st := clusterStatus(t, next); len(st.GetMembers()) != 3 {
		t.Errorf("restored cluster members: %v", st.GetMembers())
	}
}

// With --tls-cert, --tls-key and --tls-client-ca, nodes speak mutual TLS
// to each other, for raft and for forwarding: a cluster forms, a write
// through a follower reaches the leader, and a raft port refuses a
// client without a certificate.
func TestClusterOverMutualTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	ca, cert, key := writeTLSFiles(t, t.TempDir())
	creds, err := rpc.ClientTLS(rpc.ClientTLSOptions{CAFile: ca, CertFile: cert, KeyFile: key})
	if err != nil {
		t.Fatal(err)
	}
	dial := []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(creds))}
	raftAddrs := freePorts(t, 3)
	var members []string
	for i, a := range raftAddrs {
		members = append(members, fmt.Sprintf("n%d=%s", i+1, a))
	}
	var nodes []*testNode
	for i, a := range raftAddrs {
		id := fmt.Sprintf("n%d", i+1)
		nodes = append(nodes, &testNode{id: id, dial: dial, args: []string{"--node-id", id, "--raft-listen", a,
			"--initial-cluster", strings.Join(members, ","), "--data-dir", filepath.Join(t.TempDir(), id),
			"--tls-cert", cert, "--tls-key", key, "--tls-client-ca", ca}})
	}
	for _, nd := range nodes {
		nd.start(t)
	}
	leader := leaderOf(t, nodes, nil)
	ctx := context.Background()
	for _, nd := range nodes {
		if nd == leader {
			continue
		}
		if _, err := nd.kv.Set(ctx, &kvstorepb.SetRequest{Key: "via-" + nd.id, Value: "tls"}); err != nil {
			t.Fatalf("Set through %s: %v", nd.id, err)
		}
	}
	for _, nd := range nodes {
		if nd == leader {
			continue
		}
		if r, err := leader.kv.Get(ctx, &kvstorepb.GetRequest{Key: "via-" + nd.id}); err != nil || r.GetValue() != "tls" {
			t.Fatalf("Get via-%s: %v, %v", nd.id, r, err)
		}
	}
	// No client certificate: the raft port ends the handshake.
	pool := x509.NewCertPool()
	pem, _ := os.ReadFile(ca)
	pool.AppendCertsFromPEM(pem)
	conn, err := tls.Dial("tcp", raftAddrs[0], &tls.Config{RootCAs: pool})
	if err == nil {
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a raft connection without a client certificate: %v; want a certificate error", err)
	}
}

// tokenCreds is a per-call bearer token.
type tokenCreds string

func (t tokenCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(t)}, nil
}

func (tokenCreds) RequireTransportSecurity() bool { return false }

// With --auth-file on every node, writes through a follower go to the
// leader with the caller's token (a read token is refused there), and
// with --peer-token-file a node joins and every node's client address is
// published.
func TestClusterWithTokens(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir := t.TempDir()
	adminTok, adminLine, _ := rpc.NewToken(rpc.RoleAdmin, "nodes")
	writeTok, writeLine, _ := rpc.NewToken(rpc.RoleWrite, "app")
	readTok, readLine, _ := rpc.NewToken(rpc.RoleRead, "reader")
	auth := filepath.Join(dir, "tokens")
	peer := filepath.Join(dir, "peer-token")
	if err := os.WriteFile(auth, []byte(adminLine+"\n"+writeLine+"\n"+readLine+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(peer, []byte(adminTok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// leaderOf's probe reads need a token: the nodes' clients carry an
	// admin one.
	withAdmin := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			return invoker(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+adminTok), method, req, reply, cc, opts...)
		})}
	nodes := startClusterDial(t, 3, withAdmin, "--auth-file", auth, "--peer-token-file", peer)
	as := func(tok string) grpc.CallOption { return grpc.PerRPCCredentials(tokenCreds(tok)) }
	leader := leaderOf(t, nodes, nil)
	follower := nodes[0]
	if follower == leader {
		follower = nodes[1]
	}
	ctx := context.Background()
	plain := dial(t, follower.proc.addr)
	if _, err := plain.Set(ctx, &kvstorepb.SetRequest{Key: "k", Value: "v"}, as(writeTok)); err != nil {
		t.Fatalf("write token through a follower: %v", err)
	}
	if _, err := plain.Set(ctx, &kvstorepb.SetRequest{Key: "k", Value: "x"}, as(readTok)); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("read token writing through a follower: %v; want PermissionDenied", err)
	}
	if r, err := plain.Get(ctx, &kvstorepb.GetRequest{Key: "k"}, as(readTok)); err != nil || r.GetValue() != "v" {
		t.Fatalf("read token reading through a follower: %v, %v", r, err)
	}
	raft4 := freePorts(t, 1)[0]
	n4 := &testNode{id: "n4", dial: nodes[0].dial, args: []string{"--node-id", "n4", "--raft-listen", raft4,
		"--join", follower.proc.addr, "--auth-file", auth, "--peer-token-file", peer,
		"--data-dir", filepath.Join(t.TempDir(), "n4")}}
	n4.start(t)
	n4.proc.waitLog(t, "joined the cluster", "")
	admin := kvstorepb.NewAdminClient(dialConn(t, n4.proc.addr))
	for deadline := time.Now().Add(10 * time.Second); ; {
		st, err := admin.ClusterStatus(ctx, &kvstorepb.ClusterStatusRequest{}, as(adminTok))
		if err != nil {
			t.Fatal(err)
		}
		published := 0
		for _, m := range st.GetMembers() {
			if m.GetClientAddress() != "" {
				published++
			}
		}
		if published == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not every address published after 10s: %v", st.GetMembers())
		}
	}
}
