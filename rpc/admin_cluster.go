package rpc

import (
	"context"
	"errors"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"kvstore/actor"
	kvstorepb "kvstore/proto"
)

// ClusterBackend is the Admin service's cluster half, package server's
// over a cluster node. Membership changes fail with actor.ErrNotLeader
// on a follower, which forwards them to the leader.
type ClusterBackend interface {
	// ClusterStatus is this node's own view; Admin adds each member's
	// applied index and last contact when it is the leader.
	ClusterStatus(ctx context.Context) (*kvstorepb.ClusterStatusResponse, error)
	AddMember(ctx context.Context, id, raftAddr, clientAddr string, nonvoter bool) (*kvstorepb.MembershipResponse, error)
	PublishMember(ctx context.Context, id, clientAddr string) (*kvstorepb.MembershipResponse, error)
	RemoveMember(ctx context.Context, id string) (*kvstorepb.MembershipResponse, error)
	TransferLeader(ctx context.Context, id string) (*kvstorepb.MembershipResponse, error)
	Leader(ctx context.Context) (id, addr string, err error)
}

// localKey asks a node for its own cluster status only.
const localKey = "kvstore-local"

// AttachCluster gives the Admin service its cluster half and the
// forwarder that reaches the leader and the members.
func (a *Admin) AttachCluster(b ClusterBackend, fwd *Forwarder) {
	a.cluster.Store(&clusterBox{b: b, fwd: fwd})
}

type clusterBox struct {
	b   ClusterBackend
	fwd *Forwarder
}

func (a *Admin) clusterBackend() (*clusterBox, error) {
	if _, err := a.get(); err != nil {
		return nil, err
	}
	c := a.cluster.Load()
	if c == nil {
		return nil, status.Error(codes.FailedPrecondition, "not a cluster node: start with --raft-listen for cluster mode")
	}
	return c, nil
}

// ClusterStatus answers with this node's view; from the leader, each
// member is asked for its applied index and its last contact with the
// leader, concurrently, within a second.
func (a *Admin) ClusterStatus(ctx context.Context, _ *kvstorepb.ClusterStatusRequest) (*kvstorepb.ClusterStatusResponse, error) {
	c, err := a.clusterBackend()
	if err != nil {
		return nil, err
	}
	st, err := c.b.ClusterStatus(ctx)
	if err != nil {
		return nil, adminError("cluster status", err)
	}
	md, _ := metadata.FromIncomingContext(ctx)
	if len(md.Get(localKey)) > 0 {
		return st, nil
	}
	if st.GetState() != "leader" {
		// The leader's view has every member's progress; this node's own
		// is the answer when the leader cannot be reached, or when this
		// node was taken for the leader.
		if len(md.Get(forwardedKey)) > 0 {
			return st, nil
		}
		fctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if _, addr, err := c.b.Leader(fctx); err == nil {
			if admin, err := c.fwd.admin(addr); err == nil {
				if r, err := admin.ClusterStatus(passOn(fctx, md, forwardedKey, "authorization"), &kvstorepb.ClusterStatusRequest{}); err == nil {
					return r, nil
				}
			}
		}
		return st, nil
	}
	qctx, cancel := context.WithTimeout(passOn(ctx, md, localKey, "authorization"), time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, m := range st.GetMembers() {
		if m.GetId() == st.GetNodeId() {
			m.AppliedIndex, m.LastContactSeconds = st.GetAppliedIndex(), 0
			continue
		}
		m.LastContactSeconds = -1
		if m.GetClientAddress() == "" {
			continue
		}
		wg.Go(func() {
			admin, err := c.fwd.admin(m.GetClientAddress())
			if err != nil {
				return
			}
			if r, err := admin.ClusterStatus(qctx, &kvstorepb.ClusterStatusRequest{}); err == nil {
				m.AppliedIndex = r.GetAppliedIndex()
				m.LastContactSeconds = lastContact(r)
			}
		})
	}
	wg.Wait()
	return st, nil
}

// lastContact is a member's own report of how long ago it heard from the
// leader, kept in its members entry for itself.
func lastContact(r *kvstorepb.ClusterStatusResponse) float64 {
	for _, m := range r.GetMembers() {
		if m.GetId() == r.GetNodeId() {
			return m.GetLastContactSeconds()
		}
	}
	return -1
}

// membership runs a membership change here, or on the leader.
func membership[Req any](a *Admin, ctx context.Context, op string, req Req,
	here func(ClusterBackend) (*kvstorepb.MembershipResponse, error),
	there func(kvstorepb.AdminClient, context.Context, Req) (*kvstorepb.MembershipResponse, error)) (*kvstorepb.MembershipResponse, error) {
	c, err := a.clusterBackend()
	if err != nil {
		return nil, err
	}
	resp, err := here(c.b)
	if !errors.Is(err, actor.ErrNotLeader) {
		if err != nil {
			return nil, status.Errorf(codes.FailedPrecondition, "%s: %v", op, err)
		}
		return resp, nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	if len(md.Get(forwardedKey)) > 0 {
		return nil, status.Error(codes.Unavailable, "not the leader, and the request was forwarded here: leadership is moving; retry")
	}
	id, addr, lerr := c.b.Leader(ctx)
	if lerr != nil || addr == "" {
		return nil, status.Errorf(codes.Unavailable, "%s: no leader known (%q)", op, id)
	}
	admin, err := c.fwd.admin(addr)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "%s: reach the leader %s at %s: %v", op, id, addr, err)
	}
	return there(admin, passOn(ctx, md, forwardedKey, "authorization"), req)
}

func (a *Admin) AddMember(ctx context.Context, req *kvstorepb.AddMemberRequest) (*kvstorepb.MembershipResponse, error) {
	if req.GetId() == "" || req.GetRaftAddress() == "" {
		return nil, status.Error(codes.InvalidArgument, "id and raft_address are required")
	}
	return membership(a, ctx, "add member", req,
		func(b ClusterBackend) (*kvstorepb.MembershipResponse, error) {
			return b.AddMember(ctx, req.GetId(), req.GetRaftAddress(), req.GetClientAddress(), req.GetNonvoter())
		}, func(c kvstorepb.AdminClient, ctx context.Context, req *kvstorepb.AddMemberRequest) (*kvstorepb.MembershipResponse, error) {
			return c.AddMember(ctx, req)
		})
}

func (a *Admin) RemoveMember(ctx context.Context, req *kvstorepb.RemoveMemberRequest) (*kvstorepb.MembershipResponse, error) {
	if req.GetId() == "" {
		return nil, status.Error(codes.InvalidArgument, "id is required")
	}
	return membership(a, ctx, "remove member", req,
		func(b ClusterBackend) (*kvstorepb.MembershipResponse, error) { return b.RemoveMember(ctx, req.GetId()) },
		func(c kvstorepb.AdminClient, ctx context.Context, req *kvstorepb.RemoveMemberRequest) (*kvstorepb.MembershipResponse, error) {
			return c.RemoveMember(ctx, req)
		})
}

func (a *Admin) TransferLeader(ctx context.Context, req *kvstorepb.TransferLeaderRequest) (*kvstorepb.MembershipResponse, error) {
	return membership(a, ctx, "transfer leader", req,
		func(b ClusterBackend) (*kvstorepb.MembershipResponse, error) {
			return b.TransferLeader(ctx, req.GetId())
		},
		func(c kvstorepb.AdminClient, ctx context.Context, req *kvstorepb.TransferLeaderRequest) (*kvstorepb.MembershipResponse, error) {
			return c.TransferLeader(ctx, req)
		})
}

func (a *Admin) PublishMember(ctx context.Context, req *kvstorepb.PublishMemberRequest) (*kvstorepb.MembershipResponse, error) {
	if req.GetId() == "" || req.GetClientAddress() == "" {
		return nil, status.Error(codes.InvalidArgument, "id and client_address are required")
	}
	return membership(a, ctx, "publish member", req,
		func(b ClusterBackend) (*kvstorepb.MembershipResponse, error) {
			return b.PublishMember(ctx, req.GetId(), req.GetClientAddress())
		},
		func(c kvstorepb.AdminClient, ctx context.Context, req *kvstorepb.PublishMemberRequest) (*kvstorepb.MembershipResponse, error) {
			return c.PublishMember(ctx, req)
		})
}
