package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/clock"

	kvstorepb "kvstore/proto"
	"kvstore/server"
	"kvstore/wal"
)

// runMain starts a server on dir with a mock clock and returns it with a
// stop function that checks Run's result.
func runMain(t *testing.T, dir string, mock *clock.Mock, args ...string) (*server.Server, func()) {
	t.Helper()
	s, _ := newTestServer(t, mock, append([]string{"--data-dir", dir}, args...)...)
	return s, startTestServer(t, s)
}

// runMainFailing runs a server on dir that is expected to fail at start-up
// and returns what it printed and Run's error.
func runMainFailing(t *testing.T, dir string) (string, error) {
	t.Helper()
	s, stdout := newTestServer(t, nil, "--data-dir", dir)
	err := s.Run(context.Background())
	return stdout.String(), err
}

func TestRestartKeepsDataAndDropsExpired(t *testing.T) {
	dir := t.TempDir()
	mock := clock.NewMock()
	mock.Set(time.Unix(1_700_000_000, 0))
	ctx := context.Background()

	m, stop := runMain(t, dir, mock)
	c := dial(t, m.Addr().String())
	for _, req := range []*kvstorepb.SetRequest{
		{Key: "a", Value: "1"},
		{Key: "b", Value: "2"},
		{Key: "short", Value: "x", TtlSeconds: 10},
		{Key: "long", Value: "y", TtlSeconds: 3600},
	} {
		if _, err := c.Set(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Delete(ctx, &kvstorepb.DeleteRequest{Key: "b"}); err != nil {
		t.Fatal(err)
	}
	stop() // writes the final snapshot
	snaps, _ := filepath.Glob(filepath.Join(dir, "snap", "*.snap"))
	if len(snaps) != 1 {
		t.Fatalf("snapshots after shutdown: %v; want one", snaps)
	}

	// The key with a 10 s TTL expires while the server is down.
	mock.Add(time.Minute)
	m, stop = runMain(t, dir, mock, "--no-final-snapshot")
	c = dial(t, m.Addr().String())
	want := map[string]string{"a": "1", "b": "", "short": "", "long": "y"}
	for k, v := range want {
		resp, err := c.Get(ctx, &kvstorepb.GetRequest{Key: k})
		if err != nil || resp.GetValue() != v || resp.GetFound() != (v != "") {
			t.Errorf("after restart, %s = %v, %v; want %q", k, resp, err, v)
		}
	}
	// More writes, then a restart that replays them from the log alone.
	if _, err := c.Set(ctx, &kvstorepb.SetRequest{Key: "c", Value: "3"}); err != nil {
		t.Fatal(err)
	}
	stop()
	m, stop = runMain(t, dir, mock)
	defer stop()
	c = dial(t, m.Addr().String())
	if resp, err := c.Get(ctx, &kvstorepb.GetRequest{Key: "c"}); err != nil || resp.GetValue() != "3" {
		t.Fatalf("c after log replay = %v, %v", resp, err)
	}
}

func TestSecondServerOnSameDirFails(t *testing.T) {
	dir := t.TempDir()
	_, stop := runMain(t, dir, clock.NewMock())
	defer stop()
	out, err := runMainFailing(t, dir)
	if err == nil || !strings.Contains(err.Error(), "is in use by another kvstore-server") {
		t.Fatalf("second Run = %v; want the data dir to be refused", err)
	}
	if out != "" {
		t.Fatalf("refused server printed %q; it must fail before claiming a port", out)
	}
}

// TestCorruptLogStopsStartup: a bad record followed by valid ones is not a
// torn tail; startup must stop and name the file, offset and repair.
func TestCorruptLogStopsStartup(t *testing.T) {
	dir := t.TempDir()
	_, stop := runMain(t, dir, clock.NewMock(), "--no-final-snapshot")
	stop()
	seg := filepath.Join(dir, "wal", "00000000000000000001.wal")
	var buf []byte
	for i := range 3 {
		buf = wal.AppendRecord(buf, wal.Record{Seq: uint64(i + 1), Kind: wal.KindSet, Key: "k", Value: "v"})
	}
	recLen := len(buf) / 3
	buf[recLen+recLen/2] ^= 0xff // corrupt the middle record's payload
	if err := os.WriteFile(seg, buf, 0o644); err != nil {
		t.Fatal(err)
	}

	_, err := runMainFailing(t, dir)
	for _, part := range []string{seg, "offset", "kvstore-server aof check --data-dir " + dir, "--fix --force"} {
		if err == nil || !strings.Contains(err.Error(), part) {
			t.Fatalf("Run = %v; want it to mention %q", err, part)
		}
	}

	// Cutting there drops record 3, which no snapshot holds: --fix alone
	// refuses, --fix --force cuts, and the server starts again with the
	// record before the bad one.
	var out, errOut strings.Builder
	if code := runAOF([]string{"check", "--fix", "--data-dir", dir}, &out, &errOut); code != 1 ||
		!strings.Contains(out.String(), "refused") {
		t.Fatalf("aof check --fix exit %d: %s%s", code, out.String(), errOut.String())
	}
	if code := runAOF([]string{"check", "--fix", "--force", "--data-dir", dir}, &out, &errOut); code != 0 {
		t.Fatalf("aof check --fix --force exit %d: %s%s", code, out.String(), errOut.String())
	}
	m2, stop := runMain(t, dir, clock.NewMock())
	defer stop()
	resp, err := dial(t, m2.Addr().String()).Get(context.Background(), &kvstorepb.GetRequest{Key: "k"})
	if err != nil || resp.GetValue() != "v" {
		t.Fatalf("after repair, k = %v, %v", resp, err)
	}
}

func TestAOFDump(t *testing.T) {
	dir := t.TempDir()
	m, stop := runMain(t, dir, clock.NewMock(), "--no-final-snapshot")
	c := dial(t, m.Addr().String())
	c.Set(context.Background(), &kvstorepb.SetRequest{Key: "k", Value: "v"})
	c.Delete(context.Background(), &kvstorepb.DeleteRequest{Key: "k"})
	big := strings.Repeat("0123456789", 100<<10) // 1000 KiB
	if _, err := c.Set(context.Background(), &kvstorepb.SetRequest{Key: "big", Value: big}); err != nil {
		t.Fatal(err)
	}
	stop()
	var out, errOut strings.Builder
	if code := runAOF([]string{"dump", "--data-dir", dir}, &out, &errOut); code != 0 {
		t.Fatalf("dump exit %d: %s", code, errOut.String())
	}
	// Issue 13: the 1000 KiB value was one 1000 KiB line.
	want := `{"seq":1,"op":"set","key":"k","value":"v"}` + "\n" + `{"seq":2,"op":"del","key":"k"}` + "\n" +
		`{"seq":3,"op":"set","key":"big","value":"` + big[:64] + `… (1024000 bytes)","truncated":true}` + "\n"
	if out.String() != want {
		t.Fatalf("dump:\n%.500s\nwant:\n%s", out.String(), want)
	}
	out.Reset()
	if code := runAOF([]string{"dump", "--full", "--data-dir", dir}, &out, &errOut); code != 0 {
		t.Fatalf("dump --full exit %d: %s", code, errOut.String())
	}
	if !strings.HasSuffix(out.String(), `{"seq":3,"op":"set","key":"big","value":"`+big+`"}`+"\n") {
		t.Fatalf("dump --full does not end with the whole value:\n%.500s", out.String())
	}
	if code := runAOF([]string{"frob"}, &out, &errOut); code != 2 {
		t.Fatalf("unknown aof command exit %d; want 2", code)
	}
}

// TestPreallocFlag: the log zero-fills ahead of its records by default,
// and --wal-prealloc-bytes 0 turns that off.
func TestPreallocFlag(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want func(size int64) bool
	}{
		{nil, func(size int64) bool { return size == wal.DefaultPreallocBytes }},
		{[]string{"--wal-prealloc-bytes", "0"}, func(size int64) bool { return size > 0 && size < 1024 }},
	} {
		dir := t.TempDir()
		m, stop := runMain(t, dir, clock.NewMock(), tt.args...)
		c := dial(t, m.Addr().String())
		if _, err := c.Set(context.Background(), &kvstorepb.SetRequest{Key: "k", Value: "v"}); err != nil {
			t.Fatal(err)
		}
		segs, err := filepath.Glob(filepath.Join(wal.Dir(dir), "*.wal"))
		if err != nil || len(segs) != 1 {
			t.Fatalf("segments %v, %v", segs, err)
		}
		fi, err := os.Stat(segs[0])
		if err != nil {
			t.Fatal(err)
		}
		if !tt.want(fi.Size()) {
			t.Errorf("%v: segment is %d bytes", tt.args, fi.Size())
		}
		stop()
	}
}
