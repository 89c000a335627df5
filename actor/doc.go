// Package actor holds the data and the rules of the store.
//
// It has three layers, each testable on its own:
//
//   - State is the data: a sharded map with an index of deadlines and
//     copy-on-write freezing (Freeze returns a View a snapshot can read
//     from another goroutine while writes go on). It is a plain value
//     with no clock, no I/O and no locks.
//   - Machine is the rules: it checks a batch of Commands against its
//     Rules (known ops, key and value sizes, the memory limit, writes
//     refused after a storage failure), applies it to its State at a
//     given time, and returns one Result per command and one Record per
//     mutation, numbered in sequence. It is pure and deterministic: the
//     same commands at the same times on the same start state give the
//     same results, records and state, which is what lets a replica apply
//     committed batches through it and end up identical (bounded expiry
//     included: which keys a pass removes never depends on map order).
//   - Actor is the loop that feeds the Machine: the one goroutine that
//     owns it, taking Requests from a channel, applying everything queued
//     in one pass, handing the pass's records and replies to its Log as
//     one Batch (group commit), and running active expiry on a ticker.
//     Nothing on the data path takes a lock.
//
// Replies wait for durability: the Log calls Batch.Done once the batch's
// records and every earlier one are durable, and reads of state not yet
// durable wait behind it too. The actor knows no log format; package
// kvstore/wal/actorlog adapts the write-ahead log to its Log interface
// and translates the log's errors into ErrStopped and ErrNotPersisted.
package actor
