package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"kvstore/actor"
)

// Writes reach the log through one proposer goroutine: the requests that
// arrive while raft is busy with the previous entry go into the next one
// together, as the groups of a groups entry. raft's costs are per entry
// (its encoding, the log store's write, the FSM's hand-off), so under
// load they are shared by the requests of a batch, while a lone request
// is proposed at once, as before. Each group is still applied atomically
// on its own, and answered on its own. Relative deadlines
// (actor.FlagRelative) count from the entry's time, on every replica.
const (
	// maxGroups bounds the requests of one entry.
	maxGroups = 256
	// maxEntryBytes bounds an entry's encoded commands; a single request
	// larger than that goes alone.
	maxEntryBytes = 1 << 20
)

// proposal is one request waiting for the proposer.
type proposal struct {
	ctx  context.Context
	cmds []actor.Command
	size int
	done chan proposalResult // buffered: the proposer never waits
}

type proposalResult struct {
	results []actor.Result
	err     error
}

// size is about the bytes cmds take in an entry.
func commandsSize(cmds []actor.Command) int {
	n := 0
	for _, c := range cmds {
		n += len(c.Key) + len(c.Value) + 16
	}
	return n
}

// submit has the proposer put cmds in the log as one group and waits
// until it is committed and applied here. Its errors are propose's: a
// follower's ErrNotLeader means nothing was proposed.
func (n *Node) submit(ctx context.Context, cmds []actor.Command) ([]actor.Result, error) {
	if n.raft.State() != raft.Leader {
		return nil, n.notLeader()
	}
	p := &proposal{ctx: ctx, cmds: cmds, size: commandsSize(cmds), done: make(chan proposalResult, 1)}
	select {
	case n.propc <- p:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: not proposed: %w", ErrNoLeader, ctx.Err())
	case <-n.stop:
		return nil, fmt.Errorf("%w: not proposed: the node is stopping", ErrNoLeader)
	}
	select {
	case r := <-p.done:
		return r.results, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w within the deadline (%w)", actor.ErrOutcomeUnknown, errUnresolved, ctx.Err())
	case <-n.stop:
		return nil, fmt.Errorf("%w: %w: the node is stopping", actor.ErrOutcomeUnknown, errUnresolved)
	}
}

// proposeLoop is the proposer: it takes the proposals waiting, puts them
// in one entry, and hands it to raft, which blocks while raft's leader
// loop is busy — the time in which the next batch gathers.
func (n *Node) proposeLoop() {
	defer n.loops.Done()
	var batch []*proposal
	var next *proposal // the proposal that did not fit in the last batch
	for {
		batch = batch[:0]
		if next != nil {
			batch, next = append(batch, next), nil
		} else {
			select {
			case p := <-n.propc:
				batch = append(batch, p)
			case <-n.stop:
				return
			}
		}
		size := batch[0].size
	gather:
		for len(batch) < maxGroups && size < maxEntryBytes {
			select {
			case p := <-n.propc:
				if size+p.size > maxEntryBytes {
					next = p
					break gather
				}
				batch = append(batch, p)
				size += p.size
			default:
				break gather
			}
		}
		n.proposeBatch(batch, size)
	}
}

// proposeBatch proposes one entry of batch's groups and leaves the wait
// for its outcome to a goroutine of its own, so that the next entry can
// gather meanwhile.
func (n *Node) proposeBatch(batch []*proposal, size int) {
	// Proposals whose caller has given up are not proposed: that caller
	// has been told the outcome is unknown, which not proposing keeps
	// true.
	live := batch[:0:0]
	timeout := time.Duration(0)
	bounded := true
	for _, p := range batch {
		if p.ctx.Err() != nil {
			continue
		}
		live = append(live, p)
		if d, ok := p.ctx.Deadline(); ok {
			timeout = max(timeout, time.Until(d))
		} else {
			bounded = false
		}
	}
	if len(live) == 0 {
		return
	}
	if !bounded {
		timeout = 0
	} else {
		timeout = max(timeout, time.Millisecond)
	}
	if n.raft.State() != raft.Leader {
		answer(live, n.notLeader())
		return
	}
	now := n.now()
	groups := make([][]actor.Command, len(live))
	for i, p := range live {
		groups[i] = p.cmds
	}
	start := time.Now()
	fut := n.raft.Apply(appendGroups(make([]byte, 0, size+16), now, groups), timeout)
	n.loops.Add(1)
	go func() {
		defer n.loops.Done()
		// raft resolves the future at the latest when it shuts down, but
		// for an entry committed and not yet applied then
		// (hashicorp/raft#498): the node's stop ends the wait.
		res, err := n.outcome(context.Background(), fut)
		if err != nil {
			answer(live, err)
			return
		}
		if n.observe != nil {
			n.observe(time.Since(start))
		}
		if len(res.groups) != len(live) {
			answer(live, fmt.Errorf("cluster: entry %d: %d results for %d requests", fut.Index(), len(res.groups), len(live)))
			return
		}
		for i, p := range live {
			p.done <- proposalResult{results: res.groups[i].results, err: res.groups[i].err}
		}
	}()
}

// answer gives every proposal of batch the same failure.
func answer(batch []*proposal, err error) {
	for _, p := range batch {
		p.done <- proposalResult{err: err}
	}
}

// outcome waits for an entry's future, ctx or the node's stop, and maps
// raft's errors: the entry's outcome is unknown once raft has taken it,
// unless raft says it never did.
func (n *Node) outcome(ctx context.Context, fut raft.ApplyFuture) (*applyResult, error) {
	err := n.wait(ctx, fut)
	switch {
	case errors.Is(err, errUnresolved):
		return nil, err
	case err == nil:
	case errors.Is(err, raft.ErrNotLeader):
		return nil, n.notLeader()
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return nil, fmt.Errorf("%w: not proposed: %w", ErrNoLeader, err)
	default:
		// Leadership lost, or a shutdown, after the entry was handed to
		// raft: it may yet be committed by the next leader.
		return nil, fmt.Errorf("%w: %w", actor.ErrOutcomeUnknown, err)
	}
	res, _ := fut.Response().(*applyResult)
	if res == nil {
		return nil, fmt.Errorf("cluster: entry %d: no response from the state machine", fut.Index())
	}
	return res, res.err
}
