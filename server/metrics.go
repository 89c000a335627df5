package server

import (
	"kvstore/rpc"
	"kvstore/snap"
	"kvstore/wal"
)

// logStats adapts the log's counters to what the metrics read, so rpc
// need not import wal.
func logStats(l *wal.Log) func() rpc.LogStats {
	return func() rpc.LogStats {
		st := l.Stats()
		return rpc.LogStats{Bytes: st.Bytes, Records: st.Records, Syncs: st.Syncs, Failed: l.Err() != nil}
	}
}

// snapshotStats adapts the snapshotter's counters to what the metrics
// read, so rpc need not import snap.
func snapshotStats(s *snap.Snapshotter) func() rpc.SnapshotStats {
	return func() rpc.SnapshotStats {
		st := s.Stats()
		return rpc.SnapshotStats{Written: st.Written, Failed: st.Failed, LastBytes: st.LastBytes, LastTime: st.LastTime}
	}
}
