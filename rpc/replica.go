package rpc

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"kvstore/actor"
	kvstorepb "kvstore/proto"
)

// Replica is the data in cluster mode, package cluster's Node: writes and
// linearizable reads run on the leader and fail with actor.ErrNotLeader
// elsewhere, stale reads run on any node.
type Replica interface {
	Set(ctx context.Context, key, value string, ttl time.Duration) error
	Delete(ctx context.Context, key string) (bool, error)
	Get(ctx context.Context, key string, stale bool) (string, bool, error)
	// Leader waits until the leader and its client address are known,
	// or ctx ends, and returns what is known then.
	Leader(ctx context.Context) (id, addr string, err error)
}

// Metadata of the cluster mode, on gRPC and, as headers, on HTTP.
const (
	// ReadLevelKey is the read level of a Get: "stale" serves it from
	// the node it reaches, without asking the leader; anything else, or
	// nothing, is linearizable.
	ReadLevelKey = "kvstore-read"
	// forwardedKey marks a request one node forwarded to the leader, so
	// that it is never forwarded twice.
	forwardedKey = "kvstore-forwarded"
	// maxLeaderWait bounds how long a request waits for a leader to be
	// known when its own deadline is later or unset.
	maxLeaderWait = 5 * time.Second
)

// replicaBox holds a Replica and the forwarder that reaches its leader.
type replicaBox struct {
	r   Replica
	fwd *Forwarder
}

// AttachReplica makes the service a cluster node's: writes and
// linearizable reads a follower receives go to the leader through fwd.
func (s *Service) AttachReplica(r Replica, fwd *Forwarder) {
	s.replica.Store(&replicaBox{r: r, fwd: fwd})
}

// staleRead reports whether the request asked for a stale read.
func staleRead(ctx context.Context) bool {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get(ReadLevelKey) {
		if strings.EqualFold(v, "stale") {
			return true
		}
	}
	return false
}

// leader returns a client of the leader and the context to call it with:
// the caller's deadline and credentials, marked as forwarded.
func (b *replicaBox) leader(ctx context.Context) (kvstorepb.KVStoreClient, context.Context, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	if len(md.Get(forwardedKey)) > 0 {
		return nil, nil, status.Error(codes.Unavailable, "not the leader, and the request was forwarded here by a node that took this one for the leader: leadership is moving; retry")
	}
	// The answer must reach the caller before its deadline does: wait
	// for a leader for nine tenths of the time left.
	wait := maxLeaderWait
	if d, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(d)*9/10)
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	id, addr, err := b.r.Leader(wctx)
	switch {
	case id == "" && err != nil:
		return nil, nil, status.Errorf(codes.Unavailable, "no leader: %v", actor.ErrNoLeader)
	case addr == "":
		return nil, nil, status.Errorf(codes.Unavailable, "the leader %s has not published its client address yet; retry", id)
	}
	c, err := b.fwd.client(addr)
	if err != nil {
		return nil, nil, status.Errorf(codes.Unavailable, "reach the leader %s at %s: %v", id, addr, err)
	}
	return c, passOn(ctx, md, forwardedKey, "authorization", ReadLevelKey), nil
}

// passOn is ctx for a call to another node on the caller's behalf: the
// caller's deadline, the incoming values of keys, and mark set.
func passOn(ctx context.Context, md metadata.MD, mark string, keys ...string) context.Context {
	out := metadata.MD{mark: []string{"1"}}
	for _, k := range keys {
		if v := md.Get(k); len(v) > 0 {
			out[k] = v
		}
	}
	return metadata.NewOutgoingContext(ctx, out)
}

// forward runs call on the leader. A leader that cannot be reached (it
// died, and this node has not heard of the next one yet) was not sent
// the request, so the request waits for the next leader and tries again,
// within its deadline and maxLeaderWait.
func forward[Resp any](ctx context.Context, b *replicaBox, call func(kvstorepb.KVStoreClient, context.Context) (Resp, error)) (Resp, error) {
	var zero Resp
	give := time.Now().Add(maxLeaderWait)
	if d, ok := ctx.Deadline(); ok {
		give = time.Now().Add(time.Until(d) * 9 / 10)
	}
	for backoff := 10 * time.Millisecond; ; backoff = min(2*backoff, 200*time.Millisecond) {
		c, fctx, err := b.leader(ctx)
		if err != nil {
			return zero, err
		}
		resp, err := call(c, fctx)
		if !notSent(err) {
			return resp, err
		}
		if time.Now().Add(backoff).After(give) {
			return zero, status.Errorf(codes.Unavailable, "no leader: the last one known is unreachable: %v", status.Convert(err).Message())
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return zero, status.FromContextError(ctx.Err()).Err()
		}
	}
}

// notSent reports whether err is gRPC failing to reach the server before
// the request was sent: Unavailable from the client's connection, not an
// answer of the server's.
func notSent(err error) bool {
	s, ok := status.FromError(err)
	return ok && s.Code() == codes.Unavailable && strings.HasPrefix(s.Message(), "connection error:")
}

// isNotLeader reports whether err asks for the request to go to the
// leader.
func isNotLeader(err error) bool { return errors.Is(err, actor.ErrNotLeader) }

// Forwarder holds one client connection per leader address, for the
// requests a follower passes on.
type Forwarder struct {
	dial []grpc.DialOption
	// token, if set, is the admin token this node presents for its own
	// calls to other nodes (PublishMember).
	token string

	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
}

// NewForwarder returns a Forwarder that dials with opts (credentials
// among them).
func NewForwarder(opts ...grpc.DialOption) *Forwarder {
	return &Forwarder{dial: opts, conns: map[string]*grpc.ClientConn{}}
}

func (f *Forwarder) client(addr string) (kvstorepb.KVStoreClient, error) {
	conn, err := f.conn(addr)
	if err != nil {
		return nil, err
	}
	return kvstorepb.NewKVStoreClient(conn), nil
}

func (f *Forwarder) admin(addr string) (kvstorepb.AdminClient, error) {
	conn, err := f.conn(addr)
	if err != nil {
		return nil, err
	}
	return kvstorepb.NewAdminClient(conn), nil
}

// conn is the connection to addr, made on first use.
func (f *Forwarder) conn(addr string) (*grpc.ClientConn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conns == nil {
		return nil, errors.New("forwarder closed")
	}
	conn, ok := f.conns[addr]
	if !ok {
		var err error
		if conn, err = grpc.NewClient(addr, f.dial...); err != nil {
			return nil, err
		}
		f.conns[addr] = conn
	}
	return conn, nil
}

// PublishMember asks the leader at leaderAddr to record node id's client
// address (cluster.Config.Publish).
func (f *Forwarder) PublishMember(ctx context.Context, leaderAddr, id, clientAddr string) error {
	admin, err := f.admin(leaderAddr)
	if err != nil {
		return err
	}
	_, err = admin.PublishMember(f.Own(ctx), &kvstorepb.PublishMemberRequest{Id: id, ClientAddress: clientAddr})
	return err
}

// SetToken sets the admin token this node presents for its own calls to
// other nodes; forwarded requests carry their caller's instead.
func (f *Forwarder) SetToken(token string) { f.token = token }

// Own adds this node's token to ctx, for a call of its own.
func (f *Forwarder) Own(ctx context.Context) context.Context {
	if f.token == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+f.token)
}

// Close closes the connections.
func (f *Forwarder) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		c.Close()
	}
	f.conns = nil
}
