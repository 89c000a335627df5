// Package actorlog connects a write-ahead log to the actor: New wraps a
// *wal.Log as an actor.Log. It translates the actor's records into the
// log's and the log's errors into the actor's, so that the actor, and
// everything above it, need not know the log (as hashicorp/raft's LogStore
// implementations adapt a store to raft).
package actorlog

import (
	"errors"
	"fmt"

	"kvstore/actor"
	"kvstore/wal"
)

// Log is a *wal.Log seen as an actor.Log.
type Log struct{ log *wal.Log }

var _ actor.Log = Log{}

// New returns l as an actor.Log. The caller still owns l: it starts and
// closes it.
func New(l *wal.Log) Log { return Log{log: l} }

// Submit hands b's records to the log as one group and completes b's
// replies once they are durable.
func (l Log) Submit(b actor.Batch) {
	w := &waiter{batch: b}
	w.self[0] = w
	recs := make([]wal.Record, len(b.Records))
	for i, r := range b.Records {
		recs[i] = ToWAL(r)
	}
	l.log.Submit(wal.Batch{Records: recs, Waiters: w.self[:]})
}

// DurableSeq is the log's DurableSeq.
func (l Log) DurableSeq() uint64 { return l.log.DurableSeq() }

// Err is the log's sticky failure.
func (l Log) Err() error { return l.log.Err() }

// waiter completes one actor batch: a single wal.Waiter per batch, so
// the log wakes each pass's replies with one call.
type waiter struct {
	batch actor.Batch
	self  [1]wal.Waiter
}

func (w *waiter) Complete(err error) { w.batch.Done(Err(err)) }

// Err translates an error of the log into the actor's: the log closed (a
// shutdown) is actor.ErrStopped, a failed write or fsync whose records
// the log took back off actor.ErrNotPersisted, one it could not take back
// (wal.ErrOutcomeUnknown) actor.ErrOutcomeUnknown; all keep the log's
// error. Nil stays nil.
func Err(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, wal.ErrClosed):
		return fmt.Errorf("%w: %w", actor.ErrStopped, err)
	case errors.Is(err, wal.ErrOutcomeUnknown):
		return fmt.Errorf("%w: %w", actor.ErrOutcomeUnknown, err)
	default:
		return fmt.Errorf("%w: %w", actor.ErrNotPersisted, err)
	}
}

// ToWAL is the log record of an actor record.
func ToWAL(r actor.Record) wal.Record {
	k := wal.KindSet
	if r.Op == actor.OpDelete {
		k = wal.KindDelete
	}
	return wal.Record{Seq: r.Seq, Kind: k, Key: r.Key, Value: r.Value, Deadline: r.Deadline}
}

// FromWAL is the actor record of a log record, for replay (State.Apply).
func FromWAL(r wal.Record) actor.Record {
	op := actor.OpSet
	if r.Kind == wal.KindDelete {
		op = actor.OpDelete
	}
	return actor.Record{Seq: r.Seq, Op: op, Key: r.Key, Value: r.Value, Deadline: r.Deadline}
}
