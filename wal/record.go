package wal

// Kind says what a record does to its key.
type Kind uint8

const (
	// KindSet stores Value under Key with an absolute Deadline.
	KindSet Kind = 1
	// KindDelete removes Key.
	KindDelete Kind = 2
)

// Record is one mutation, in the order the actor applied it. Expiry needs
// no record: deadlines are absolute, so replay never resurrects a key whose
// deadline has passed.
type Record struct {
	// Seq is the record's sequence number: the first record is 1 and each
	// next one is one higher, with no gaps.
	Seq  uint64
	Kind Kind
	Key  string
	// Value is the stored value (KindSet only).
	Value string
	// Deadline is the absolute expiry time in Unix nanoseconds, 0 for none
	// (KindSet only).
	Deadline int64
}

// Waiter is a reply held back until the records submitted before it are
// durable.
type Waiter interface {
	// Complete is called exactly once: with nil once every record submitted
	// before or with the waiter is durable under the fsync policy, or with
	// the error that made that impossible. It runs on the writer goroutine
	// (or in Submit or Close, for batches refused at once), so it must not
	// block: hand the result to the waiting goroutine and return.
	Complete(err error)
}

// Batch is what the actor hands the writer after one pass over its pending
// commands: the records of the mutations it applied, in sequence order,
// and the replies that may go out once those records are durable. Either
// may be empty; a batch with only waiters is a barrier for reads. The
// writer owns both slices once submitted.
type Batch struct {
	Records []Record
	Waiters []Waiter
}
