package redisfront

import (
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// redis-cli, Debian's redis-tools, against the front: .ci/run installs
// it and sets KVSTORE_REQUIRE_REDIS_CLI, so CI fails rather than skips.
func TestRedisCLI(t *testing.T) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		if os.Getenv("KVSTORE_REQUIRE_REDIS_CLI") != "" {
			t.Fatal("redis-cli not found, and KVSTORE_REQUIRE_REDIS_CLI is set")
		}
		t.Skip("redis-cli not installed (apt-get install redis-tools)")
	}
	f := newFront(t, frontOpts{})
	host, port, _ := net.SplitHostPort(f.addr)
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(cli, append([]string{"-h", host, "-p", port}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("redis-cli %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := run("set", "a", "1"); got != "OK" {
		t.Errorf("set a 1: %q", got)
	}
	if got := run("get", "a"); got != "1" {
		t.Errorf("get a: %q", got)
	}
	run("set", "b", "2")
	if got := strings.Fields(run("--scan")); !slices.Contains(got, "a") || !slices.Contains(got, "b") || len(got) != 2 {
		t.Errorf("--scan: %q", got)
	}
	if got := run("incr", "n"); got != "1" {
		t.Errorf("incr n: %q", got)
	}
	if got := run("info", "server"); !strings.Contains(got, "redis_version:") {
		t.Errorf("info server: %q", got)
	}
	if got := run("nosuch", "x"); !strings.Contains(got, "unknown command 'nosuch'") {
		t.Errorf("nosuch: %q", got)
	}
}
