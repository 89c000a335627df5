package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/hashicorp/raft"

	"kvstore/actor"
)

// Member is one node of the cluster's configuration.
type Member struct {
	ID          string
	RaftAddress string
	// ClientAddress is the gRPC address the node published, "" if none.
	ClientAddress string
	Voter         bool
	Leader        bool
}

// Status is the cluster as this node sees it.
type Status struct {
	ID, State, LeaderID             string
	Term, CommitIndex, AppliedIndex uint64
	LastContact                     time.Duration // since the leader was heard from; 0 on the leader
	Members                         []Member
}

// Status describes this node and the configuration it holds.
func (n *Node) Status() (Status, error) {
	fut := n.raft.GetConfiguration()
	if err := fut.Error(); err != nil {
		return Status{}, err
	}
	_, leader := n.raft.LeaderWithID()
	st := Status{
		ID: n.id, State: stateName(n.raft.State()), LeaderID: string(leader),
		Term: n.raft.CurrentTerm(), CommitIndex: n.raft.CommitIndex(), AppliedIndex: n.fsm.appliedIndex(),
	}
	if n.raft.State() != raft.Leader {
		if lc := n.raft.LastContact(); !lc.IsZero() {
			st.LastContact = time.Since(lc)
		}
	}
	members := n.fsm.memberList()
	for _, s := range fut.Configuration().Servers {
		st.Members = append(st.Members, Member{
			ID: string(s.ID), RaftAddress: string(s.Address), ClientAddress: members[string(s.ID)],
			Voter: s.Suffrage == raft.Voter, Leader: s.ID == leader,
		})
	}
	return st, nil
}

func stateName(s raft.RaftState) string {
	switch s {
	case raft.Leader:
		return "leader"
	case raft.Follower:
		return "follower"
	case raft.Candidate:
		return "candidate"
	}
	return "shutdown"
}

// timeoutOf is what raft's calls take as a timeout: ctx's time left, 0
// (none) without a deadline.
func timeoutOf(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return max(time.Until(d), time.Millisecond)
	}
	return 0
}

// membershipError maps raft's refusals: on a follower the change must go
// to the leader.
func (n *Node) membershipError(err error) error {
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
		return n.notLeader()
	}
	return err
}

// AddMember adds node id at its raft address, as a voter or a nonvoter,
// records its client address if given, and returns the index of the
// configuration change. Leader only.
func (n *Node) AddMember(ctx context.Context, id, raftAddr, clientAddr string, nonvoter bool) (uint64, error) {
	if id == "" || raftAddr == "" {
		return 0, errors.New("cluster: a member needs an ID and a raft address")
	}
	if n.raft.State() != raft.Leader {
		return 0, n.notLeader()
	}
	var fut raft.IndexFuture
	if nonvoter {
		fut = n.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(raftAddr), 0, timeoutOf(ctx))
	} else {
		fut = n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(raftAddr), 0, timeoutOf(ctx))
	}
	if err := n.wait(ctx, fut); err != nil {
		return 0, n.membershipError(fmt.Errorf("add %s at %s: %w", id, raftAddr, err))
	}
	if clientAddr != "" {
		if _, err := n.PublishMember(ctx, id, clientAddr); err != nil {
			return fut.Index(), fmt.Errorf("added %s, but recording its client address failed: %w", id, err)
		}
	}
	return fut.Index(), nil
}

// RemoveMember removes node id. Leader only; a leader may remove itself,
// and then steps down.
func (n *Node) RemoveMember(ctx context.Context, id string) (uint64, error) {
	if n.raft.State() != raft.Leader {
		return 0, n.notLeader()
	}
	fut := n.raft.RemoveServer(raft.ServerID(id), 0, timeoutOf(ctx))
	if err := n.wait(ctx, fut); err != nil {
		return 0, n.membershipError(fmt.Errorf("remove %s: %w", id, err))
	}
	return fut.Index(), nil
}

// TransferLeader hands the leadership to node id, or with id "" to the
// voter raft finds most up to date. Leader only.
func (n *Node) TransferLeader(ctx context.Context, id string) error {
	if n.raft.State() != raft.Leader {
		return n.notLeader()
	}
	var fut raft.Future
	if id == "" {
		fut = n.raft.LeadershipTransfer()
	} else {
		st, err := n.Status()
		if err != nil {
			return err
		}
		addr := ""
		for _, m := range st.Members {
			if m.ID == id {
				addr = m.RaftAddress
			}
		}
		if addr == "" {
			return fmt.Errorf("cluster: %s is not a member", id)
		}
		fut = n.raft.LeadershipTransferToServer(raft.ServerID(id), raft.ServerAddress(addr))
	}
	if err := n.wait(ctx, fut); err != nil {
		return n.membershipError(fmt.Errorf("transfer the leadership: %w", err))
	}
	return nil
}

// Recover forces a new configuration, servers (raft ID to raft address,
// all voters), on a stopped node's stores: after a quorum is lost for
// good, run it on the survivors with the same servers (or on one, alone),
// then start them. It replays the node's log into a scratch state
// machine, writes a snapshot with the new configuration, and truncates
// the log (raft.RecoverCluster). Entries the node holds but that were not
// committed become committed: the best a lost quorum allows.
func Recover(cfg Config, servers map[string]string) error {
	if len(servers) == 0 {
		return errors.New("cluster: recover needs the members to keep")
	}
	rc := cfg.raftConfig()
	a := actor.New(actor.Config{ExpireInterval: -1, Rules: cfg.Rules})
	defer a.Stop()
	tempDir := cfg.TempDir
	if tempDir == "" {
		tempDir = os.TempDir()
	}
	trans := cfg.Transport
	if trans == nil {
		_, t := raft.NewInmemTransport(raft.ServerAddress(cfg.ID))
		defer t.Close()
		trans = t
	}
	if err := raft.RecoverCluster(rc, newFSM(a, tempDir), cfg.Logs, cfg.Stable, cfg.Snapshots, trans, voters(servers)); err != nil {
		return fmt.Errorf("cluster: recover: %w", err)
	}
	return nil
}
