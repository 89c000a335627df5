package wal

// SetSyncHook makes the writer of l call fn after each successful segment
// fsync. It must be called before Start.
func SetSyncHook(l *Log, fn func()) { l.syncHook = fn }

// SegmentName exposes segmentName to the external tests.
var SegmentName = segmentName

// SetSyncRequestHook makes the writer of l call fn with the seq of each
// SyncThrough request it takes. It must be called before Start.
func SetSyncRequestHook(l *Log, fn func(seq uint64)) { l.syncRequestHook = fn }
