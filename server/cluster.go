package server

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/oklog/run"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"kvstore/cluster"
	kvstorepb "kvstore/proto"
	"kvstore/rpc"
	"kvstore/wal"
)

// parseInitialCluster reads --initial-cluster: ID=ADDR pairs, commas
// between them.
func parseInitialCluster(s string) (map[string]string, error) {
	servers := map[string]string{}
	for part := range strings.SplitSeq(s, ",") {
		id, addr, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || id == "" || addr == "" {
			return nil, fmt.Errorf("--initial-cluster: %q is not ID=HOST:PORT", part)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("--initial-cluster: %s: %v", id, err)
		}
		if _, dup := servers[id]; dup {
			return nil, fmt.Errorf("--initial-cluster: %s is listed twice", id)
		}
		servers[id] = addr
	}
	return servers, nil
}

// raftDir holds a cluster node's raft log, its term and vote (raft.db)
// and raft's snapshots.
func raftDir(dataDir string) string { return filepath.Join(dataDir, "raft") }

// clusterStorage is what a cluster node runs on: the raft stores and the
// transport, closed in reverse.
type clusterStorage struct {
	bolt  *raftboltdb.BoltStore
	logs  raft.LogStore
	snaps raft.SnapshotStore
	trans *raft.NetworkTransport
}

func (cs *clusterStorage) close() error {
	var errs []error
	if cs.trans != nil {
		errs = append(errs, cs.trans.Close())
	}
	if cs.bolt != nil {
		errs = append(errs, cs.bolt.Close())
	}
	return errors.Join(errs...)
}

// openClusterStorage opens the raft stores in the data dir and listens
// for raft traffic. raft.db is fsynced on every append: an entry is
// acknowledged to the leader only once it is durable here.
func openClusterStorage(c *Config, sec security, log *slog.Logger) (*clusterStorage, error) {
	cs, err := openRaftStores(c.DataDir, log)
	if err != nil {
		return nil, err
	}
	out := raftLogWriter{log}
	advertise := c.RaftAdvertise
	if advertise == "" {
		advertise = c.RaftListen
	}
	adv, err := net.ResolveTCPAddr("tcp", advertise)
	if err != nil {
		cs.close()
		return nil, fmt.Errorf("--raft-advertise %s: %w", advertise, err)
	}
	tc := &raft.NetworkTransportConfig{MaxPool: 3, Timeout: 10 * time.Second,
		Logger: hclog.New(&hclog.LoggerOptions{Name: "raft-net", Output: out, Level: hclog.Info})}
	if c.RaftPeerAddrs != "" {
		peers, perr := parseInitialCluster(c.RaftPeerAddrs)
		if perr != nil {
			cs.close()
			return nil, fmt.Errorf("--raft-peer-addrs: %w", perr)
		}
		tc.ServerAddressProvider = peerAddrs(peers)
	}
	if sec.tls == nil {
		cs.trans, err = raft.NewTCPTransportWithConfig(c.RaftListen, adv, tc)
	} else {
		var layer *tlsStreamLayer
		if layer, err = listenTLSStream(c.RaftListen, adv, sec.tls.Config(), sec.tls.PeerConfig()); err == nil {
			tc.Stream = layer
			cs.trans = raft.NewNetworkTransportWithConfig(tc)
		}
	}
	if err != nil {
		cs.close()
		return nil, fmt.Errorf("listen on %s (--raft-listen): %w", c.RaftListen, err)
	}
	return cs, nil
}

// peerAddrs is --raft-peer-addrs: the addresses to dial some nodes' raft
// ports at, instead of the ones in the cluster's configuration (behind a
// NAT or a proxy). Others are dialed as configured.
type peerAddrs map[string]string

func (p peerAddrs) ServerAddr(id raft.ServerID) (raft.ServerAddress, error) {
	if a, ok := p[string(id)]; ok {
		return raft.ServerAddress(a), nil
	}
	return "", fmt.Errorf("no --raft-peer-addrs entry for %s", id)
}

// tlsStreamLayer is raft's transport over mutual TLS: the other nodes
// present certificates signed by --tls-client-ca, and so does this one
// when it dials them.
type tlsStreamLayer struct {
	net.Listener
	advertise net.Addr
	dial      *tls.Config
}

func listenTLSStream(addr string, advertise net.Addr, server, dial *tls.Config) (*tlsStreamLayer, error) {
	if dial == nil {
		return nil, errors.New("cluster TLS needs --tls-client-ca: nodes verify each other with it")
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &tlsStreamLayer{Listener: tls.NewListener(l, server), advertise: advertise, dial: dial}, nil
}

// Addr is the advertised address: what raft tells the other nodes.
func (l *tlsStreamLayer) Addr() net.Addr { return l.advertise }

// Dial connects to a node's raft port and completes the handshake within
// timeout, so a peer that does not speak TLS fails the dial, not the
// first message.
func (l *tlsStreamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	return tls.DialWithDialer(d, "tcp", string(addr), l.dial)
}

// openRaftStores opens raft's log, stable store and snapshots in dataDir.
func openRaftStores(dataDir string, log *slog.Logger) (*clusterStorage, error) {
	dir := raftDir(dataDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cs := &clusterStorage{}
	var err error
	if cs.bolt, err = raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db")}); err != nil {
		return nil, fmt.Errorf("open the raft log: %w", err)
	}
	if cs.logs, err = raft.NewLogCache(512, cs.bolt); err != nil {
		cs.close()
		return nil, err
	}
	if cs.snaps, err = raft.NewFileSnapshotStore(dir, 2, raftLogWriter{log}); err != nil {
		cs.close()
		return nil, fmt.Errorf("open the raft snapshots: %w", err)
	}
	return cs, nil
}

// RecoverCluster is `kvstore-server cluster recover`: offline, on a
// stopped node's data dir, it forces the cluster configuration to
// members (--initial-cluster syntax) after a quorum is lost for good
// (cluster.Recover). It holds the data dir's lock meanwhile.
func RecoverCluster(dataDir, nodeID, members string, log *slog.Logger) error {
	servers, err := parseInitialCluster(members)
	if err != nil {
		return err
	}
	if _, ok := servers[nodeID]; !ok {
		return fmt.Errorf("--members does not list --node-id %q: a node recovers into a cluster it is in", nodeID)
	}
	if _, err := os.Stat(filepath.Join(raftDir(dataDir), "raft.db")); err != nil {
		return fmt.Errorf("%s holds no cluster state: %w", dataDir, err)
	}
	lock, err := wal.LockDir(dataDir)
	if err != nil {
		return err
	}
	defer lock.Release()
	cs, err := openRaftStores(dataDir, log)
	if err != nil {
		return err
	}
	defer cs.close()
	return cluster.Recover(cluster.Config{ID: nodeID, Logs: cs.logs, Stable: cs.bolt, Snapshots: cs.snaps,
		TempDir: raftDir(dataDir), LogOutput: raftLogWriter{log}}, servers)
}

// raftLogWriter turns raft's log lines ("2026-12-03T... [WARN]  raft: ...")
// into the server's structured log, at their level.
type raftLogWriter struct{ log *slog.Logger }

func (w raftLogWriter) Write(p []byte) (int, error) {
	for line := range bytes.Lines(p) {
		msg := strings.TrimSpace(string(line))
		level := slog.LevelInfo
		switch {
		case strings.Contains(msg, "[ERROR]"):
			level = slog.LevelError
		case strings.Contains(msg, "[WARN]"):
			level = slog.LevelWarn
		case strings.Contains(msg, "[DEBUG]"), strings.Contains(msg, "[TRACE]"):
			level = slog.LevelDebug
		}
		if _, rest, ok := strings.Cut(msg, "]"); ok {
			msg = strings.TrimSpace(rest)
		}
		w.log.Log(context.Background(), level, msg, "component", "raft")
	}
	return len(p), nil
}

// clientAddr is the address other nodes forward to: --listen's, with the
// raft address's host when --listen names no host (":50051", "0.0.0.0").
func clientAddr(listen net.Addr, raftAdvertise string) string {
	host, port, err := net.SplitHostPort(listen.String())
	if err != nil {
		return listen.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		if h, _, err := net.SplitHostPort(raftAdvertise); err == nil {
			host = h
		}
	}
	return net.JoinHostPort(host, port)
}

// raftConfig is raft's defaults with faster failure detection: a
// follower that hears nothing for 500 ms (raft's default is 1 s) stands
// for election, so a dead leader is replaced in about a second; a leader
// that cannot reach a quorum for 250 ms steps down. Snapshots: raft's
// defaults (every 2 minutes once 8,192 entries have accumulated, keeping
// 10,240 entries after one for followers that are briefly behind).
func raftConfig() *raft.Config {
	c := raft.DefaultConfig()
	c.HeartbeatTimeout = 500 * time.Millisecond
	c.ElectionTimeout = 500 * time.Millisecond
	c.LeaderLeaseTimeout = 250 * time.Millisecond
	return c
}

// peerCreds are the credentials this node dials other nodes' gRPC
// ports with: mutual TLS with its own certificate when TLS is on.
func (s *Server) peerCreds() grpc.DialOption {
	if cfg := s.sec.tls.PeerConfig(); cfg != nil {
		return grpc.WithTransportCredentials(credentials.NewTLS(cfg))
	}
	return grpc.WithTransportCredentials(insecure.NewCredentials())
}

// startCluster starts this node's raft and, when the data dir holds no
// cluster state, bootstraps a new cluster from --initial-cluster, or
// reports that --join must add it (join).
func (s *Server) startCluster(cs *clusterStorage, svc *rpc.Service, metrics *rpc.Metrics) (node *cluster.Node, fwd *rpc.Forwarder, join bool, err error) {
	c := &s.cfg
	has, err := raft.HasExistingState(cs.logs, cs.bolt, cs.snaps)
	if err != nil {
		return nil, nil, false, err
	}
	// Forwarded requests carry the caller's token; the leader checks it.
	fwd = rpc.NewForwarder(s.peerCreds())
	if c.PeerTokenFile != "" {
		b, err := os.ReadFile(c.PeerTokenFile)
		if err != nil {
			fwd.Close()
			return nil, nil, false, fmt.Errorf("--peer-token-file: %w", err)
		}
		fwd.SetToken(strings.TrimSpace(string(b)))
	}
	node, err = cluster.New(cluster.Config{
		ID:             c.NodeID,
		ClientAddr:     clientAddr(s.addr, string(cs.trans.LocalAddr())),
		Publish:        fwd.PublishMember,
		ObserveApply:   metrics.ObserveApply,
		Transport:      cs.trans,
		Logs:           cs.logs,
		Stable:         cs.bolt,
		Snapshots:      cs.snaps,
		Clock:          s.clock,
		Rules:          c.rules(),
		ExpireInterval: c.ExpireInterval,
		TempDir:        raftDir(c.DataDir),
		LogOutput:      raftLogWriter{s.log},
		Raft:           raftConfig(),
	})
	if err != nil {
		fwd.Close()
		return nil, nil, false, err
	}
	if c.InitialCluster != "" && !has {
		servers, _ := parseInitialCluster(c.InitialCluster) // Validate checked it
		if err := node.Bootstrap(servers); err != nil {
			node.Close()
			fwd.Close()
			return nil, nil, false, fmt.Errorf("bootstrap the cluster: %w", err)
		}
		s.log.Info("bootstrapped a new cluster", "members", c.InitialCluster)
	}
	svc.AttachReplica(node, fwd)
	return node, fwd, c.Join != "" && !has, nil
}

// followLeader keeps the health status in step with the leadership
// until ctx ends: SERVING while this node knows a leader and, the first
// time, once it has applied what was committed when it learned of it;
// NOT_SERVING while it knows none.
func followLeader(ctx context.Context, node *cluster.Node, h interface {
	SetServing()
	SetNotServing()
}) {
	caughtUp := false
	for {
		changed := node.LeaderChanged()
		st := node.Stats()
		switch {
		case !st.HasLeader:
			h.SetNotServing()
		case !caughtUp:
			// Applied through the commit index seen now: then reads on
			// this node are no further behind than anyone's.
			if node.WaitApplied(ctx, st.CommitIndex) == nil {
				caughtUp = true
				h.SetServing()
			}
		default:
			h.SetServing()
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return
		}
	}
}

// clusterAdmin is the Admin service of a cluster node. A backup is of
// this node's applied data (on a follower, as of its last applied entry;
// take it from the leader for the newest); Snapshot has raft write one.
type clusterAdmin struct {
	node *cluster.Node
	cfg  *Config
}

func (b *clusterAdmin) Backup(ctx context.Context) (rpc.BackupSource, error) {
	v, seq, err := b.node.Actor().Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	return &backupView{view: v, seq: seq}, nil
}

func (b *clusterAdmin) Snapshot(ctx context.Context) (*kvstorepb.SnapshotResponse, error) {
	if err := b.node.Raft().Snapshot().Error(); err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) {
		return nil, err
	}
	st := b.node.Actor().Stats()
	return &kvstorepb.SnapshotResponse{Seq: st.Seq, Path: raftDir(b.cfg.DataDir), Keys: uint64(st.Keys)}, nil
}

func (b *clusterAdmin) Info(context.Context) (*kvstorepb.InfoResponse, error) {
	st := b.node.Actor().Stats()
	c := b.cfg
	return &kvstorepb.InfoResponse{
		Keys:           uint64(st.Keys),
		KeysWithTtl:    uint64(st.KeysWithTTL),
		Seq:            st.Seq,
		MemoryBytes:    uint64(max(st.Bytes, 0)),
		MaxMemoryBytes: uint64(c.MaxMemory),
		Fsync:          "raft (fsync per append)",
		DataDir:        c.DataDir,
		MaxKeyBytes:    uint64(c.MaxKeyBytes),
		MaxValueBytes:  uint64(c.MaxValueBytes),
		MaxConnections: uint64(c.MaxConnections),
	}, nil
}

// runCluster is Run's cluster mode, from the fronts on: raft instead of
// the wal and the snapshotter, the service attached to the node.
func (s *Server) runCluster(ctx context.Context, cancel context.CancelFunc, fr *fronts, svc *rpc.Service, admin *rpc.Admin, metrics *rpc.Metrics) error {
	c, log := &s.cfg, s.log
	cs, err := openClusterStorage(c, s.sec, log)
	if err != nil {
		fr.stop()
		return err
	}
	node, fwd, joining, err := s.startCluster(cs, svc, metrics)
	if err != nil {
		cs.close()
		fr.stop()
		return err
	}
	metrics.Attach(node.Actor(), nil, nil)
	metrics.AttachCluster(func() rpc.ClusterStats {
		st := node.Stats()
		return rpc.ClusterStats{Leader: st.Leader, HasLeader: st.HasLeader, Term: st.Term,
			CommitIndex: st.CommitIndex, AppliedIndex: st.AppliedIndex, LastContact: st.LastContact.Seconds(),
			LeaderChanges: st.LeaderChanges, SnapshotInstalls: st.SnapshotInstalls}
	})
	ca := &clusterAdmin{node: node, cfg: c}
	admin.Attach(ca)
	admin.AttachCluster(ca, fwd)
	fmt.Fprintf(s.stdout, "Key-Value Store gRPC server is running on port %d (cluster node %s, raft %s)\n",
		s.addr.(*net.TCPAddr).Port, c.NodeID, cs.trans.LocalAddr())
	fmt.Fprintf(s.stdout, "Press Ctrl+C to stop the server\n")
	log.Info("serving", "grpc", s.addr.String(), "http", addrString(s.httpAddr), "data_dir", c.DataDir,
		"node_id", c.NodeID, "raft", string(cs.trans.LocalAddr()))
	close(s.ready)

	var g run.Group
	g.Add(func() error { <-ctx.Done(); return nil }, func(error) { cancel() })
	// Serving while a leader is known: without one every call waits or
	// fails.
	healthCtx, stopHealth := context.WithCancel(context.Background())
	g.Add(func() error {
		followLeader(healthCtx, node, fr.grpc)
		return nil
	}, func(error) { stopHealth() })
	if joining {
		joinCtx, stopJoin := context.WithCancel(context.Background())
		raftAddr := string(cs.trans.LocalAddr())
		g.Add(func() error {
			err := s.join(joinCtx, fwd, raftAddr, clientAddr(s.addr, raftAddr))
			if err != nil && joinCtx.Err() == nil {
				return err
			}
			<-joinCtx.Done()
			return nil
		}, func(error) { stopJoin() })
	}
	g.Add(s.frontsUnit(fr))
	var closeErr error
	done := make(chan struct{})
	g.Add(func() error { <-done; return nil }, func(error) {
		fwd.Close()
		closeErr = errors.Join(node.Close(), cs.close())
		close(done)
	})
	if err := g.Run(); err != nil {
		return err
	}
	if closeErr != nil {
		return fmt.Errorf("close the raft node: %w", closeErr)
	}
	log.Info("shutdown complete")
	return nil
}

// ClusterStatus is this node's view of the cluster.
func (b *clusterAdmin) ClusterStatus(context.Context) (*kvstorepb.ClusterStatusResponse, error) {
	st, err := b.node.Status()
	if err != nil {
		return nil, err
	}
	resp := &kvstorepb.ClusterStatusResponse{
		NodeId: st.ID, State: st.State, LeaderId: st.LeaderID,
		Term: st.Term, CommitIndex: st.CommitIndex, AppliedIndex: st.AppliedIndex,
	}
	for _, m := range st.Members {
		cm := &kvstorepb.ClusterMember{Id: m.ID, RaftAddress: m.RaftAddress, ClientAddress: m.ClientAddress,
			Suffrage: "nonvoter", Leader: m.Leader}
		if m.Voter {
			cm.Suffrage = "voter"
		}
		if m.ID == st.ID {
			cm.AppliedIndex, cm.LastContactSeconds = st.AppliedIndex, st.LastContact.Seconds()
		}
		resp.Members = append(resp.Members, cm)
	}
	return resp, nil
}

func (b *clusterAdmin) membership(index uint64, err error) (*kvstorepb.MembershipResponse, error) {
	if err != nil {
		return nil, err
	}
	return &kvstorepb.MembershipResponse{LeaderId: b.cfg.NodeID, Index: index}, nil
}

func (b *clusterAdmin) AddMember(ctx context.Context, id, raftAddr, clientAddr string, nonvoter bool) (*kvstorepb.MembershipResponse, error) {
	return b.membership(b.node.AddMember(ctx, id, raftAddr, clientAddr, nonvoter))
}

func (b *clusterAdmin) PublishMember(ctx context.Context, id, clientAddr string) (*kvstorepb.MembershipResponse, error) {
	return b.membership(b.node.PublishMember(ctx, id, clientAddr))
}

func (b *clusterAdmin) RemoveMember(ctx context.Context, id string) (*kvstorepb.MembershipResponse, error) {
	return b.membership(b.node.RemoveMember(ctx, id))
}

func (b *clusterAdmin) TransferLeader(ctx context.Context, id string) (*kvstorepb.MembershipResponse, error) {
	if err := b.node.TransferLeader(ctx, id); err != nil {
		return nil, err
	}
	// The answer names the new leader, once this node has heard of it.
	lid, _, _ := b.node.Leader(ctx)
	return &kvstorepb.MembershipResponse{LeaderId: lid}, nil
}

func (b *clusterAdmin) Leader(ctx context.Context) (string, string, error) { return b.node.Leader(ctx) }

// join asks the node at --join to add this one, retrying (the cluster may
// be electing) until it is done or ctx ends. A refusal that a retry cannot
// fix (bad arguments, no permission) ends the server.
func (s *Server) join(ctx context.Context, fwd *rpc.Forwarder, raftAddr, clientAddr string) error {
	c := &s.cfg
	conn, err := grpc.NewClient(c.Join, s.peerCreds())
	if err != nil {
		return fmt.Errorf("--join %s: %w", c.Join, err)
	}
	defer conn.Close()
	admin := kvstorepb.NewAdminClient(conn)
	req := &kvstorepb.AddMemberRequest{Id: c.NodeID, RaftAddress: raftAddr, ClientAddress: clientAddr,
		Nonvoter: c.JoinAs == "nonvoter"}
	for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
		cctx, cancel := context.WithTimeout(fwd.Own(ctx), 10*time.Second)
		resp, err := admin.AddMember(cctx, req)
		cancel()
		if err == nil {
			s.log.Info("joined the cluster", "via", c.Join, "leader", resp.GetLeaderId(), "as", cmp.Or(c.JoinAs, "voter"))
			return nil
		}
		switch status.Code(err) {
		case codes.InvalidArgument, codes.PermissionDenied, codes.Unauthenticated:
			return fmt.Errorf("--join %s refused: %w", c.Join, err)
		}
		s.log.Warn("join: retrying", "via", c.Join, "err", err, "in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
