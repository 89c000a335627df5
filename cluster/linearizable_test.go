package cluster

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/hashicorp/raft"

	"kvstore/actor"
)

// kvInput and kvOutput are one operation of a linearizability history.
type kvInput struct {
	op    actor.Op
	key   string
	value string
}

type kvOutput struct {
	value   string
	found   bool
	unknown bool // a write whose outcome the cluster could not tell
}

// kvState is one key's value.
type kvState struct {
	present bool
	value   string
}

// kvModel is a register per key: get sees the last set, delete reports
// whether the key was there.
var kvModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		for _, op := range h {
			k := op.Input.(kvInput).key
			byKey[k] = append(byKey[k], op)
		}
		var out [][]porcupine.Operation
		for _, ops := range byKey {
			out = append(out, ops)
		}
		return out
	},
	Init: func() any { return kvState{} },
	Step: func(state, input, output any) (bool, any) {
		st, in, out := state.(kvState), input.(kvInput), output.(kvOutput)
		switch in.op {
		case actor.OpGet:
			return out.found == st.present && (!out.found || out.value == st.value), st
		case actor.OpSet:
			return true, kvState{present: true, value: in.value}
		default: // OpDelete
			return out.unknown || out.found == st.present, kvState{}
		}
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(kvInput), output.(kvOutput)
		return fmt.Sprintf("%v %s %q -> %+v", in.op, in.key, in.value, out)
	},
}

// partition cuts node id off from every other node, or heals it.
func (c *testCluster) partition(id string, cut bool) {
	for other, tr := range c.trans {
		if other == id {
			continue
		}
		if cut {
			tr.Disconnect(raft.ServerAddress(id))
			c.trans[id].Disconnect(raft.ServerAddress(other))
		} else {
			tr.Connect(raft.ServerAddress(id), c.trans[id])
			c.trans[id].Connect(raft.ServerAddress(other), tr)
		}
	}
}

// history runs clients doing gets, sets and deletes on a few keys against
// random nodes (a follower's refusal sends the call to the leader it
// names), while a nemesis cuts one node off and heals it every 150
// completed operations, the leader half of the time. It returns the
// history of the calls whose effect is known or possible.
func history(t *testing.T, c *testCluster, clients, opsPerClient int) []porcupine.Operation {
	t.Helper()
	start := time.Now()
	now := func() int64 { return int64(time.Since(start)) }
	ids := []string{"n1", "n2", "n3"}
	var (
		mu   sync.Mutex
		hist []porcupine.Operation
		done atomic.Int64
		wg   sync.WaitGroup
		// outcomes counts the calls by how they ended, for the log.
		outcomes = map[string]int{}
	)
	nemesisc := make(chan struct{}, 1)
	var cuts, leaderCuts int
	for cl := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(cl), 7))
			for i := range opsPerClient {
				in := kvInput{key: fmt.Sprintf("k%d", rng.IntN(3))}
				switch r := rng.IntN(10); {
				case r < 5:
					in.op = actor.OpGet
				case r < 9:
					in.op, in.value = actor.OpSet, fmt.Sprintf("c%d-%d", cl, i)
				default:
					in.op = actor.OpDelete
				}
				call := now()
				out, keep, why := c.do(ids[rng.IntN(len(ids))], in)
				mu.Lock()
				outcomes[why]++
				mu.Unlock()
				ret := now()
				if out.unknown {
					ret = math.MaxInt64 // it may take effect any time later
				}
				if keep {
					mu.Lock()
					hist = append(hist, porcupine.Operation{ClientId: cl, Input: in, Call: call, Output: out, Return: ret})
					mu.Unlock()
				}
				if keep && done.Add(1)%150 == 0 {
					select {
					case nemesisc <- struct{}{}:
					default:
					}
				}
			}
		})
	}
	stop := make(chan struct{})
	nemesis := make(chan struct{})
	go func() {
		defer close(nemesis)
		rng := rand.New(rand.NewPCG(99, 1))
		cut := ""
		defer func() { t.Logf("nemesis: %d partitions, %d of the leader", cuts, leaderCuts) }()
		for {
			select {
			case <-stop:
				if cut != "" {
					c.partition(cut, false)
				}
				return
			case <-nemesisc:
			}
			if cut != "" {
				c.partition(cut, false)
				cut = ""
				continue
			}
			cut = ids[rng.IntN(len(ids))]
			for id, n := range c.nodes {
				if n.raft.State() == raft.Leader && (id == cut || rng.IntN(2) == 0) {
					cut = id
					leaderCuts++
				}
			}
			cuts++
			c.partition(cut, true)
		}
	}()
	wg.Wait()
	close(stop)
	<-nemesis
	t.Logf("calls by outcome: %v", outcomes)
	return hist
}

// do runs one operation, within a second, sending it on to the leader a
// refusal names, or waiting for one when none is known. keep is false
// for a call that certainly had no effect (refused, or a read that
// failed); why says how it ended.
func (c *testCluster) do(id string, in kvInput) (out kvOutput, keep bool, why string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for {
		n := c.nodes[id]
		var err error
		switch in.op {
		case actor.OpGet:
			out.value, out.found, err = n.Get(ctx, in.key, false)
		case actor.OpSet:
			err = n.Set(ctx, in.key, in.value, 0)
		default:
			out.found, err = n.Delete(ctx, in.key)
		}
		var le *LeaderError
		switch {
		case err == nil:
			return out, true, "ok"
		case ctx.Err() != nil && in.op == actor.OpGet:
			return out, false, "read timed out"
		case errors.As(err, &le) && le.ID != "":
			id = le.ID
			continue
		case errors.Is(err, ErrNotLeader) || errors.Is(err, ErrNoLeader):
			// This node knows no leader (it may be the one cut off):
			// wait a little for one, else ask the next node.
			wctx, wcancel := context.WithTimeout(ctx, 50*time.Millisecond)
			lid, _, lerr := n.Leader(wctx)
			wcancel()
			switch {
			case ctx.Err() != nil:
				return out, false, "no leader in time"
			case lerr != nil:
				id = map[string]string{"n1": "n2", "n2": "n3", "n3": "n1"}[id]
			default:
				id = lid
			}
			continue
		case in.op != actor.OpGet:
			// Proposed, and then the leadership moved or the deadline
			// passed: it may be committed.
			return kvOutput{unknown: true}, true, "unknown"
		}
		return out, false, "read failed"
	}
}

// Concurrent gets, sets and deletes across partitions of the leader and
// of followers form a linearizable history.
func TestLinearizable(t *testing.T) {
	c := newTestCluster(t, 3)
	c.leader()
	h := history(t, c, 5, 400)
	res := porcupine.CheckOperationsTimeout(kvModel, h, 30*time.Second)
	if res != porcupine.Ok {
		t.Fatalf("history of %d operations: %v; want linearizable", len(h), res)
	}
	t.Logf("%d operations, linearizable", len(h))
}

// The same test catches a cluster whose followers answer reads from their
// own data without asking the leader: it is not linearizable.
func TestLinearizabilityCheckCatchesFollowerReads(t *testing.T) {
	c := newTestCluster(t, 3)
	c.leader()
	for _, n := range c.nodes {
		n.unsafeFollowerReads = true
	}
	h := history(t, c, 5, 400)
	if res := porcupine.CheckOperationsTimeout(kvModel, h, 30*time.Second); res != porcupine.Illegal {
		t.Fatalf("history of %d operations with follower reads: %v; want Illegal", len(h), res)
	}
}
