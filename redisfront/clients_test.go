package redisfront

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The Redis client libraries people use, each with its default settings,
// through the scripts in testdata/clients: redis-py (Debian's
// python3-redis), node-redis and ioredis (npm "redis" and "ioredis", in
// the node_modules of the directory KVSTORE_NODE_MODULES names). .ci/run
// installs them all and sets KVSTORE_REQUIRE_CLIENTS, so that CI fails
// rather than skips.
func TestClientLibraries(t *testing.T) {
	require := os.Getenv("KVSTORE_REQUIRE_CLIENTS") != ""
	missing := func(t *testing.T, what string) {
		if require {
			t.Fatalf("%s not found, and KVSTORE_REQUIRE_CLIENTS is set", what)
		}
		t.Skipf("%s not found (see .ci/run for how CI installs it)", what)
	}
	run := func(t *testing.T, name string, args ...string) {
		f := newFront(t, frontOpts{})
		_, port, _ := net.SplitHostPort(f.addr)
		cmd := exec.Command(name, append(args, port)...)
		if dir := os.Getenv("KVSTORE_NODE_MODULES"); dir != "" {
			cmd.Env = append(os.Environ(), "NODE_PATH="+filepath.Join(dir, "node_modules"))
		}
		out, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "ok" {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	t.Run("redis-py", func(t *testing.T) {
		// Debian's module is for Debian's python3, which may not be the
		// first python3 on PATH.
		for _, py := range []string{"python3", "/usr/bin/python3"} {
			if exec.Command(py, "-c", "import redis").Run() == nil {
				run(t, py, "testdata/clients/redis_py.py")
				return
			}
		}
		missing(t, "python3 with the redis module")
	})
	for _, lib := range []struct{ name, module, script string }{
		{"node-redis", "redis", "testdata/clients/node_redis.js"},
		{"ioredis", "ioredis", "testdata/clients/ioredis.js"},
	} {
		t.Run(lib.name, func(t *testing.T) {
			node, err := exec.LookPath("node")
			if err != nil {
				missing(t, "node")
			}
			dir := os.Getenv("KVSTORE_NODE_MODULES")
			if _, err := os.Stat(filepath.Join(dir, "node_modules", lib.module)); dir == "" || err != nil {
				missing(t, "npm package "+lib.module+" (KVSTORE_NODE_MODULES)")
			}
			run(t, node, lib.script)
		})
	}
}
