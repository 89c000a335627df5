package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	kvstorepb "kvstore/proto"
)

// pairProxy forwards one node's raft connections to another node's raft
// port; cut drops them and refuses new ones until heal. One per ordered
// pair of nodes partitions a node from each other node separately, which
// one proxy in front of a node's port could not (every peer dials the
// same address, from 127.0.0.1).
type pairProxy struct {
	l      net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	conns []net.Conn
	wg    sync.WaitGroup
}

func newPairProxy(t *testing.T, target string) *pairProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pairProxy{l: l, target: target}
	p.wg.Go(p.serve)
	t.Cleanup(func() {
		l.Close()
		p.setCut(true)
		p.wg.Wait()
	})
	return p
}

func (p *pairProxy) serve() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		p.wg.Go(func() { io.Copy(up, c); up.Close() })
		p.wg.Go(func() { io.Copy(c, up); c.Close() })
	}
}

// setCut cuts the pair (closing its connections) or heals it.
func (p *pairProxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
	}
}

// kvOp is one operation of the history the binaries produce.
type kvOp struct {
	op    string // get, set, del
	key   string
	value string
}

type kvRes struct {
	value   string
	found   bool
	unknown bool
}

type kvReg struct {
	present bool
	value   string
}

var binModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		for _, o := range h {
			by[o.Input.(kvOp).key] = append(by[o.Input.(kvOp).key], o)
		}
		var out [][]porcupine.Operation
		for _, ops := range by {
			out = append(out, ops)
		}
		return out
	},
	Init: func() any { return kvReg{} },
	Step: func(state, input, output any) (bool, any) {
		st, in, out := state.(kvReg), input.(kvOp), output.(kvRes)
		switch in.op {
		case "get":
			return out.found == st.present && (!out.found || out.value == st.value), st
		case "set":
			return true, kvReg{present: true, value: in.value}
		default:
			return out.unknown || out.found == st.present, kvReg{}
		}
	},
}

// Three real processes whose raft traffic runs through a proxy per
// ordered pair; clients send gets, sets and deletes to random nodes
// (followers forward them) while a nemesis cuts one node off from the
// other two, the leader half of the time, and heals it. The history is
// linearizable.
func TestClusterLinearizableAcrossPartitions(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	if res := partitionHistory(t, false); res != porcupine.Ok {
		t.Fatalf("history across partitions: %v; want linearizable", res)
	}
}

// The same test catches reads that skip the leader: with kvstore-read:
// stale, a node cut off answers from its old data, and the history is
// not linearizable.
func TestClusterPartitionCheckCatchesStaleReads(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	if res := partitionHistory(t, true); res != porcupine.Illegal {
		t.Fatalf("history with stale reads across partitions: %v; want Illegal", res)
	}
}

// partitionHistory runs the clients and the nemesis and checks the
// history; stale makes every get a stale read.
func partitionHistory(t *testing.T, stale bool) porcupine.CheckResult {
	t.Helper()
	raftAddrs := freePorts(t, 3)
	ids := []string{"n1", "n2", "n3"}
	proxies := map[[2]int]*pairProxy{}
	for i := range 3 {
		for j := range 3 {
			if i != j {
				proxies[[2]int{i, j}] = newPairProxy(t, raftAddrs[j])
			}
		}
	}
	var members []string
	for i, a := range raftAddrs {
		members = append(members, fmt.Sprintf("%s=%s", ids[i], a))
	}
	var nodes []*testNode
	for i, a := range raftAddrs {
		var peers []string
		for j := range 3 {
			if j != i {
				peers = append(peers, fmt.Sprintf("%s=%s", ids[j], proxies[[2]int{i, j}].l.Addr()))
			}
		}
		nodes = append(nodes, &testNode{id: ids[i], args: []string{"--node-id", ids[i], "--raft-listen", a,
			"--initial-cluster", strings.Join(members, ","), "--raft-peer-addrs", strings.Join(peers, ","),
			"--data-dir", filepath.Join(t.TempDir(), ids[i])}})
	}
	for _, nd := range nodes {
		nd.start(t)
	}
	leaderOf(t, nodes, nil)
	isolate := func(k int, cut bool) {
		for pair, p := range proxies {
			if pair[0] == k || pair[1] == k {
				p.setCut(cut)
			}
		}
	}

	start := time.Now()
	now := func() int64 { return int64(time.Since(start)) }
	var (
		mu       sync.Mutex
		hist     []porcupine.Operation
		done     int
		outcomes = map[string]int{}
		wg       sync.WaitGroup
	)
	nemesis := make(chan struct{}, 1)
	const clients, perClient = 4, 120
	for cl := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(cl), 3))
			for i := range perClient {
				in := kvOp{key: fmt.Sprintf("k%d", rng.IntN(3))}
				switch r := rng.IntN(10); {
				case r < 5:
					in.op = "get"
				case r < 9:
					in.op, in.value = "set", fmt.Sprintf("c%d-%d", cl, i)
				default:
					in.op = "del"
				}
				kv := nodes[rng.IntN(3)].kv
				// Short: a call to the node cut off waits for a leader it
				// cannot learn of until its deadline.
				ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
				if stale && in.op == "get" {
					ctx = metadataStale(ctx)
				}
				call := now()
				var out kvRes
				var err error
				switch in.op {
				case "get":
					var r *kvstorepb.GetResponse
					if r, err = kv.Get(ctx, &kvstorepb.GetRequest{Key: in.key}); err == nil {
						out.value, out.found = r.GetValue(), r.GetFound()
					}
				case "set":
					_, err = kv.Set(ctx, &kvstorepb.SetRequest{Key: in.key, Value: in.value})
				default:
					var r *kvstorepb.DeleteResponse
					if r, err = kv.Delete(ctx, &kvstorepb.DeleteRequest{Key: in.key}); err == nil {
						out.found = r.GetDeleted()
					}
				}
				cancel()
				ret := now()
				keep, why := true, "ok"
				if err != nil {
					why = status.Code(err).String()
					switch {
					case in.op == "get":
						keep = false // a failed read has no effect
					case status.Code(err) == codes.Unavailable && strings.Contains(err.Error(), "no leader") && !strings.Contains(err.Error(), "unknown"):
						keep = false // never proposed
					default:
						out, ret = kvRes{unknown: true}, math.MaxInt64
					}
				}
				mu.Lock()
				outcomes[why]++
				if keep {
					hist = append(hist, porcupine.Operation{ClientId: cl, Input: in, Call: call, Output: out, Return: ret})
					done++
					if done%50 == 0 {
						select {
						case nemesis <- struct{}{}:
						default:
						}
					}
				}
				mu.Unlock()
			}
		})
	}
	stop := make(chan struct{})
	nemesisDone := make(chan struct{})
	cuts := 0
	go func() {
		defer close(nemesisDone)
		rng := rand.New(rand.NewPCG(5, 5))
		cut := -1
		for {
			select {
			case <-stop:
				if cut >= 0 {
					isolate(cut, false)
				}
				return
			case <-nemesis:
			}
			if cut >= 0 {
				isolate(cut, false)
				cut = -1
				continue
			}
			cut = rng.IntN(3)
			// The first cut is the leader's, so at least one election
			// happens (checked below); then the leader half the time.
			if cuts == 0 || rng.IntN(2) == 0 {
				for i, nd := range nodes {
					if nd.state() == "leader" {
						cut = i
					}
				}
			}
			cuts++
			isolate(cut, true)
		}
	}()
	wg.Wait()
	close(stop)
	<-nemesisDone
	res := porcupine.CheckOperationsTimeout(binModel, hist, 30*time.Second)
	st := clusterStatus(t, leaderOf(t, nodes, nil))
	t.Logf("%d operations kept of %d (%v), %d partitions, term %d: %v", len(hist), clients*perClient, outcomes, cuts, st.GetTerm(), res)
	// Term 2 is the first election's: a later one means the cut of the
	// leader reached raft, through the proxies.
	if st.GetTerm() < 3 {
		t.Errorf("term %d after cutting the leader off: the partitions did not reach raft", st.GetTerm())
	}
	return res
}
