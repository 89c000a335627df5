package server

import (
	"testing"

	"go.uber.org/goleak"
)

// A raft future committed but not applied when a cluster node shuts down
// never resolves (hashicorp/raft#498); cluster.Node abandons its waiter.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("kvstore/cluster.(*Node).wait.func1"))
}
