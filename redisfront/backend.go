package redisfront

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/benbjohnson/clock"

	"kvstore/actor"
)

// Backend is the data the front serves: a single node's actor, or (later)
// a cluster node.
type Backend interface {
	// Do applies r's commands as one independent request at the
	// backend's time, which it stores in r.Now.
	Do(ctx context.Context, r *actor.Request) error
	// Scan is one bounded step of a scan over the keys (State.ScanShards).
	Scan(ctx context.Context, cursor uint64, count int, match func(string) bool) (keys []string, next uint64, err error)
	// Stats are the data's counts; ok is false while the data loads.
	Stats() (st actor.Stats, ok bool)
}

// errLoading answers while recovery runs, as Redis answers while it
// loads its dataset.
var errLoading = errors.New("LOADING kvstore is loading the dataset in memory")

// ActorBackend serves a single node's actor, which appears once recovery
// is done (Set).
type ActorBackend struct {
	a     atomic.Pointer[actor.Actor]
	clock clock.Clock
}

// NewActorBackend returns a backend that answers LOADING until Set.
func NewActorBackend(clk clock.Clock) *ActorBackend {
	if clk == nil {
		clk = clock.New()
	}
	return &ActorBackend{clock: clk}
}

// Set makes a the data served.
func (b *ActorBackend) Set(a *actor.Actor) { b.a.Store(a) }

func (b *ActorBackend) Do(ctx context.Context, r *actor.Request) error {
	a := b.a.Load()
	if a == nil {
		return errLoading
	}
	r.Now = b.clock.Now().UnixNano()
	r.Independent = true
	return a.Do(ctx, r)
}

func (b *ActorBackend) Scan(ctx context.Context, cursor uint64, count int, match func(string) bool) ([]string, uint64, error) {
	a := b.a.Load()
	if a == nil {
		return nil, 0, errLoading
	}
	return a.Scan(ctx, cursor, count, b.clock.Now().UnixNano(), match)
}

func (b *ActorBackend) Stats() (actor.Stats, bool) {
	a := b.a.Load()
	if a == nil {
		return actor.Stats{}, false
	}
	return a.Stats(), true
}
