package rpc

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoStorageDependency: the fronts reach the data only through the
// actor, so they can serve a replicated store as well as a local one;
// rpc must not depend on the log or the snapshot format, even indirectly.
func TestNoStorageDependency(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "kvstore/rpc").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		switch dep {
		case "kvstore/wal", "kvstore/snap":
			t.Errorf("kvstore/rpc depends on %s", dep)
		}
	}
}
