package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"kvstore/actor"
	kvstorepb "kvstore/proto"
	"kvstore/rpc"
)

// grpcPool is the gRPC target: a few connections shared by all clients,
// each call taking the next connection in turn.
//
// Why a pool and not one connection: every call on one HTTP/2 connection
// goes through that connection's single TCP stream and its one reader and
// one writer goroutine on each side, so with 50 clients one connection
// measures the transport's serialisation rather than the server. One
// connection per client is unlike real clients and costs the server a
// transport per client. A small pool (default 4) removes the
// single-connection ceiling at the cost of a few sockets, as client-side
// pools in practice do.
type grpcPool struct {
	conns   []*grpc.ClientConn
	kv      []kvstorepb.KVStoreClient
	next    atomic.Uint64
	timeout time.Duration
}

// splitAddrs splits --addr, a comma-separated list, into its addresses.
func splitAddrs(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		out = append(out, strings.TrimSpace(a))
	}
	return out
}

// poolSize is how many connections a pool of n over addrs opens: n, but
// at least one per address.
func poolSize(n int, addrs []string) int { return max(n, len(addrs)) }

// dialPool connects n connections, spread round-robin over addrs (at least
// one per address), and waits, up to timeout, until each has answered a
// Get, so that a server that is not up is reported before the run rather
// than as errors of the run.
func dialPool(ctx context.Context, addrs []string, n int, timeout time.Duration, valueSize int, co rpc.ClientOptions) (*grpcPool, error) {
	p := &grpcPool{timeout: timeout}
	dial, err := rpc.DialOptions(co)
	if err != nil {
		return nil, err
	}
	// A Get returns a whole value: make room beyond grpc's 4 MiB default.
	dial = append(dial, grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxRecv(valueSize))))
	conns, err := dialAll(addrs, n, dial)
	if err != nil {
		return nil, err
	}
	p.conns = conns
	for _, conn := range conns {
		p.kv = append(p.kv, kvstorepb.NewKVStoreClient(conn))
	}
	for i, kv := range p.kv {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		_, err := kv.Get(cctx, &kvstorepb.GetRequest{Key: keyName(0)}, grpc.WaitForReady(true))
		cancel()
		if err != nil {
			p.Close()
			return nil, notAnswering{addrs[i%len(addrs)], err}
		}
	}
	return p, nil
}

// maxRecv is the largest response a pool accepts: a whole value and room
// around it, at least grpc's 4 MiB default.
func maxRecv(valueSize int) int { return max(4<<20, valueSize+64<<10) }

// dialAll creates poolSize(n, addrs) connections, connection i to
// addrs[i%len(addrs)]. grpc.NewClient does not connect yet: the first
// call does.
func dialAll(addrs []string, n int, dial []grpc.DialOption) ([]*grpc.ClientConn, error) {
	var conns []*grpc.ClientConn
	for i := range poolSize(n, addrs) {
		addr := addrs[i%len(addrs)]
		conn, err := grpc.NewClient(addr, dial...)
		if err != nil {
			for _, c := range conns {
				c.Close()
			}
			return nil, fmt.Errorf("connect to %s: %w", addr, err)
		}
		conns = append(conns, conn)
	}
	return conns, nil
}

// notAnswering is dialPool's error for a server that did not answer the
// first Get: down, or speaking TLS when the pool does not (or the reverse).
type notAnswering struct {
	addr string
	err  error
}

func (e notAnswering) Error() string {
	return fmt.Sprintf("server at %s does not answer: %v", e.addr, e.err)
}

func (e notAnswering) Unwrap() error { return e.err }

// Close closes every connection.
func (p *grpcPool) Close() {
	for _, c := range p.conns {
		c.Close()
	}
}

func (p *grpcPool) client() kvstorepb.KVStoreClient {
	return p.kv[p.next.Add(1)%uint64(len(p.kv))]
}

func (p *grpcPool) Set(ctx context.Context, key, value string, ttlSeconds int64) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	_, err := p.client().Set(ctx, &kvstorepb.SetRequest{Key: key, Value: value, TtlSeconds: ttlSeconds})
	return err
}

func (p *grpcPool) Get(ctx context.Context, key string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	resp, err := p.client().Get(ctx, &kvstorepb.GetRequest{Key: key})
	return resp.GetFound(), err
}

func (p *grpcPool) Delete(ctx context.Context, key string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	resp, err := p.client().Delete(ctx, &kvstorepb.DeleteRequest{Key: key})
	return resp.GetDeleted(), err
}

// actorTarget drives an actor in this process: no gRPC, no serialisation,
// no log. It measures the data path alone (hand-off to the owner goroutine,
// the map, the reply), i.e. the ceiling the server could reach if the
// transport and durability were free.
type actorTarget struct{ a *actor.Actor }

func (t actorTarget) Set(ctx context.Context, key, value string, ttlSeconds int64) error {
	var deadline int64
	if ttlSeconds > 0 {
		deadline = time.Now().Add(time.Duration(ttlSeconds) * time.Second).UnixNano()
	}
	return t.a.Set(ctx, key, value, deadline)
}

func (t actorTarget) Get(ctx context.Context, key string) (bool, error) {
	_, found, err := t.a.Get(ctx, key, time.Now().UnixNano())
	return found, err
}

func (t actorTarget) Delete(ctx context.Context, key string) (bool, error) {
	return t.a.Delete(ctx, key, time.Now().UnixNano())
}

// codeOf names a failure by its gRPC status code; the in-process actor's
// errors get the code the gRPC front would give them.
func codeOf(err error) codes.Code {
	if s, ok := status.FromError(err); ok {
		return s.Code()
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	case errors.Is(err, actor.ErrStopped), errors.Is(err, actor.ErrStorage):
		return codes.Unavailable
	}
	return codes.Unknown
}
