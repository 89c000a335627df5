package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"kvstore/actor"
	kvstorepb "kvstore/proto"
	"kvstore/rpc"
	"kvstore/snap"
	"kvstore/wal"
)

// encodeMode is how testBackend's backups end.
type encodeMode int

const (
	encodeWhole      encodeMode = iota
	encodeFailMidway            // half the file, then an error
	encodeShort                 // half the file, then the whole file's size and checksum
)

// testBackend is an rpc.AdminBackend over the test server's actor, as the
// server's own is: a backup is a frozen view of the actor, encoded with
// snap.Encode, so it holds the keys the client set.
type testBackend struct {
	a    *actor.Actor
	mode encodeMode
	info *kvstorepb.InfoResponse

	mu   sync.Mutex
	sent bytes.Buffer // what the last backup handed the stream
}

func (b *testBackend) Backup(ctx context.Context) (rpc.BackupSource, error) {
	v, seq, err := b.a.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.sent.Reset()
	b.mu.Unlock()
	return &testBackup{b: b, view: v, seq: seq}, nil
}

func (b *testBackend) Snapshot(context.Context) (*kvstorepb.SnapshotResponse, error) {
	return nil, errors.New("not in these tests")
}

func (b *testBackend) Info(context.Context) (*kvstorepb.InfoResponse, error) {
	if b.info == nil {
		return &kvstorepb.InfoResponse{}, nil
	}
	// A copy: rpc.Admin fills in its own fields (version, uptime, heap).
	return proto.CloneOf(b.info), nil
}

// sentBytes is what the last backup gave the stream.
func (b *testBackend) sentBytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.sent.Bytes())
}

type testBackup struct {
	b    *testBackend
	view *actor.View
	seq  uint64
}

func (v *testBackup) Seq() uint64  { return v.seq }
func (v *testBackup) Keys() uint64 { return uint64(v.view.Len()) }
func (v *testBackup) Release()     { v.view.Release() }

// record notes the bytes the stream took.
type record struct{ b *testBackend }

func (r record) Write(p []byte) (int, error) {
	r.b.mu.Lock()
	defer r.b.mu.Unlock()
	return r.b.sent.Write(p)
}

func (v *testBackup) Encode(w io.Writer) (int64, uint32, error) {
	w = io.MultiWriter(w, record{v.b})
	if v.b.mode == encodeWhole {
		e, err := snap.Encode(w, v.seq, v.view)
		return e.Bytes, e.Checksum, err
	}
	var whole bytes.Buffer
	e, err := snap.Encode(&whole, v.seq, v.view)
	if err != nil {
		return 0, 0, err
	}
	if _, err := w.Write(whole.Bytes()[:whole.Len()/2]); err != nil {
		return 0, 0, err
	}
	if v.b.mode == encodeFailMidway {
		return 0, 0, errors.New("disk on fire")
	}
	return e.Bytes, e.Checksum, nil
}

// startAdminServer serves a fresh store with the Admin service over b,
// whose actor it sets; clk is the Admin's clock (nil: the real one).
func startAdminServer(t *testing.T, b *testBackend, clk clock.Clock, opts rpc.ServerOptions) string {
	t.Helper()
	b.a = actor.New(actor.Config{ExpireInterval: -1})
	opts.Admin = rpc.NewAdmin(clk)
	opts.Admin.Attach(b)
	return startServerActor(t, b.a, rpc.Options{}, opts)
}

// loadBackup checks a backup the way restore does, by loading it as a
// data dir's snapshot, and returns its entries.
func loadBackup(t *testing.T, data []byte, seq uint64) (snap.Info, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%020d.snap", seq)), data, 0o600); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	info, err := snap.Load(wal.OS, dir, 0, func(key, value string, _ int64) error {
		got[key] = value
		return nil
	})
	if err != nil {
		t.Fatalf("backup does not load: %v", err)
	}
	return info, got
}

// setKeys sets keys through the client and returns them.
func setKeys(t *testing.T, addr string) map[string]string {
	t.Helper()
	keys := map[string]string{
		"a": "1",
		"b": "two",
		// Larger than a snapshot block, so the backup is several chunks.
		"big": strings.Repeat("0123456789abcdef", 10<<10),
	}
	for k, v := range keys {
		if code, _, errOut := runClient(t, addr, "set", k, v); code != 0 {
			t.Fatalf("set %s: exit %d, %q", k, code, errOut)
		}
	}
	return keys
}

// summaryRE is the line a successful backup ends with on stderr.
var summaryRE = regexp.MustCompile(`^backup: (\d+) bytes, (\d+) keys, seq (\d+), checksum [0-9a-f]{8}, \S+ \(\d+\.\d MiB/s\) -> (.+)\n$`)

// parseSummary returns the bytes, keys, seq and destination of a summary.
func parseSummary(t *testing.T, stderr string) (size, keys, seq uint64, dest string) {
	t.Helper()
	m := summaryRE.FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("stderr %q is not a backup summary", stderr)
	}
	n := func(s string) uint64 {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	return n(m[1]), n(m[2]), n(m[3]), m[4]
}

// dirNames lists dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestBackupToFile(t *testing.T) {
	b := &testBackend{}
	addr := startAdminServer(t, b, nil, rpc.ServerOptions{})
	keys := setKeys(t, addr)
	dir := t.TempDir()
	path := filepath.Join(dir, "kv.snap")

	code, out, errOut := runClient(t, addr, "backup", "-o", path)
	if code != 0 || out != "" {
		t.Fatalf("backup: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	size, nkeys, seq, dest := parseSummary(t, errOut)
	if dest != path || nkeys != uint64(len(keys)) || seq != uint64(len(keys)) {
		t.Errorf("summary %q: want %d keys, seq %d (one per set), -> %s", errOut, len(keys), len(keys), path)
	}
	info, err := snap.Verify(wal.OS, path)
	if err != nil {
		t.Fatalf("the backup does not verify: %v", err)
	}
	if info.Seq != seq || info.Count != nkeys || uint64(info.Bytes) != size {
		t.Errorf("file: seq %d, %d entries, %d bytes; summary said seq %d, %d keys, %d bytes", info.Seq, info.Count, info.Bytes, seq, nkeys, size)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if sent := b.sentBytes(); !bytes.Equal(data, sent) {
		t.Errorf("file is %d bytes, not the %d bytes the server sent", len(data), len(sent))
	}
	if _, got := loadBackup(t, data, seq); len(got) != len(keys) {
		t.Errorf("backup holds %d keys, want %d", len(got), len(keys))
	} else {
		for k, v := range keys {
			if got[k] != v {
				t.Errorf("backup: %q = %d bytes, want the %d set", k, len(got[k]), len(v))
			}
		}
	}
	if names := dirNames(t, dir); len(names) != 1 {
		t.Errorf("dir holds %q; want the backup alone, no temporary file", names)
	}

	// A second backup replaces the first.
	if code, _, errOut := runClient(t, addr, "set", "c", "3"); code != 0 {
		t.Fatalf("set c: exit %d, %q", code, errOut)
	}
	if code, _, errOut := runClient(t, addr, "backup", "-o", path); code != 0 {
		t.Fatalf("second backup: exit %d, %q", code, errOut)
	}
	if info, err := snap.Verify(wal.OS, path); err != nil || info.Count != uint64(len(keys)+1) {
		t.Errorf("second backup: %+v, %v; want %d entries", info, err, len(keys)+1)
	}
}

// -o - writes the backup to stdout and nothing else; the summary goes to
// stderr.
func TestBackupToStdout(t *testing.T) {
	b := &testBackend{}
	addr := startAdminServer(t, b, nil, rpc.ServerOptions{})
	keys := setKeys(t, addr)
	code, out, errOut := runClient(t, addr, "backup", "-o", "-")
	if code != 0 {
		t.Fatalf("backup -o -: exit %d, %q", code, errOut)
	}
	if sent := b.sentBytes(); out != string(sent) {
		t.Fatalf("stdout is %d bytes, not the %d bytes the server sent", len(out), len(sent))
	}
	size, _, seq, dest := parseSummary(t, errOut)
	if dest != "stdout" || size != uint64(len(out)) {
		t.Errorf("summary %q: want %d bytes -> stdout", errOut, len(out))
	}
	if _, got := loadBackup(t, []byte(out), seq); len(got) != len(keys) {
		t.Errorf("backup holds %d keys, want %d", len(got), len(keys))
	}
}

// A backup whose stream breaks off, or whose size does not add up, fails
// and leaves neither FILE nor a temporary file; a FILE from before stays
// as it was.
func TestBackupIncompleteLeavesNoFile(t *testing.T) {
	for _, s := range []struct {
		name    string
		mode    encodeMode
		wantErr string
	}{
		{"error midway", encodeFailMidway, "Unavailable: backup: disk on fire"},
		{"short of its size", encodeShort, ""},
	} {
		t.Run(s.name, func(t *testing.T) {
			b := &testBackend{mode: s.mode}
			addr := startAdminServer(t, b, nil, rpc.ServerOptions{})
			setKeys(t, addr)
			dir := t.TempDir()
			path := filepath.Join(dir, "kv.snap")
			code, out, errOut := runClient(t, addr, "backup", "-o", path)
			want := fmt.Sprintf("kvstore-client: backup stream ended early after %d bytes", len(b.sentBytes()))
			if code != 2 || out != "" || !strings.HasPrefix(errOut, want) || !strings.Contains(errOut, s.wantErr) {
				t.Errorf("exit %d, stdout %q, stderr %q; want 2 and %q %q", code, out, errOut, want, s.wantErr)
			}
			if names := dirNames(t, dir); len(names) != 0 {
				t.Errorf("dir holds %q after a failed backup; want nothing", names)
			}

			old := []byte("the backup of yesterday")
			if err := os.WriteFile(path, old, 0o600); err != nil {
				t.Fatal(err)
			}
			if code, _, errOut := runClient(t, addr, "backup", "-o", path); code != 2 {
				t.Fatalf("over an old file: exit %d, %q; want 2", code, errOut)
			}
			if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, old) {
				t.Errorf("old backup after a failed one: %q, %v; want it untouched", got, err)
			}
			if names := dirNames(t, dir); len(names) != 1 {
				t.Errorf("dir holds %q; want the old backup alone", names)
			}
		})
	}
}

// fakeAdmin is an Admin server that misbehaves as rpc.Admin never does:
// after one chunk its Backup ends without the last message, or stalls.
type fakeAdmin struct {
	kvstorepb.UnimplementedAdminServer
	stall bool
}

func (f *fakeAdmin) Backup(_ *kvstorepb.BackupRequest, stream grpc.ServerStreamingServer[kvstorepb.BackupChunk]) error {
	if err := stream.Send(&kvstorepb.BackupChunk{Seq: 7, Keys: 1, Data: []byte("half a snapshot")}); err != nil {
		return err
	}
	if f.stall {
		<-stream.Context().Done()
		return stream.Context().Err()
	}
	return nil
}

// startFakeAdmin serves f alone.
func startFakeAdmin(t *testing.T, f *fakeAdmin) string {
	t.Helper()
	srv := grpc.NewServer()
	kvstorepb.RegisterAdminServer(srv, f)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		srv.Serve(lis)
		close(served)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-served
	})
	return lis.Addr().String()
}

func TestBackupStreamWithoutLastMessage(t *testing.T) {
	addr := startFakeAdmin(t, &fakeAdmin{})
	dir := t.TempDir()
	code, out, errOut := runClient(t, addr, "backup", "-o", filepath.Join(dir, "kv.snap"))
	if want := "kvstore-client: backup stream ended early after 15 bytes\n"; code != 2 || out != "" || errOut != want {
		t.Errorf("exit %d, stdout %q, stderr %q; want 2 and %q", code, out, errOut, want)
	}
	if names := dirNames(t, dir); len(names) != 0 {
		t.Errorf("dir holds %q; want nothing", names)
	}
	// To stdout the bytes are gone already, but the error is the same.
	code, _, errOut = runClient(t, addr, "backup", "-o", "-")
	if code != 2 || !strings.Contains(errOut, "ended early after 15 bytes") {
		t.Errorf("-o -: exit %d, %q; want 2, ended early", code, errOut)
	}
}

// --timeout is how long the backup waits for the next message: a server
// that stops sending fails it, however long the backup may take in all.
func TestBackupStalledServer(t *testing.T) {
	addr := startFakeAdmin(t, &fakeAdmin{stall: true})
	dir := t.TempDir()
	code, out, errOut := runClient(t, addr, "--timeout", "100ms", "backup", "-o", filepath.Join(dir, "kv.snap"))
	want := "kvstore-client: backup failed: the server stopped sending (nothing for 100ms, the --timeout) after 15 bytes\n"
	if code != 2 || out != "" || errOut != want {
		t.Errorf("exit %d, stdout %q, stderr %q; want 2 and %q", code, out, errOut, want)
	}
	if names := dirNames(t, dir); len(names) != 0 {
		t.Errorf("dir holds %q; want nothing", names)
	}
}

// Backup and Info need the admin role: the server's refusal is the error.
func TestAdminNeedsAdminToken(t *testing.T) {
	token, auth := writeRoleAuth(t, rpc.RoleWrite)
	addr := startAdminServer(t, &testBackend{}, nil, rpc.ServerOptions{
		Unary:  []grpc.UnaryServerInterceptor{auth.UnaryInterceptor()},
		Stream: []grpc.StreamServerInterceptor{auth.StreamInterceptor()},
	})
	dir := t.TempDir()
	for _, s := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"backup", "-o", filepath.Join(dir, "kv.snap")}, "kvstore-client: Unauthenticated: "},
		{[]string{"--token", token, "backup", "-o", filepath.Join(dir, "kv.snap")}, "kvstore-client: PermissionDenied: "},
		{[]string{"info"}, "kvstore-client: Unauthenticated: "},
		{[]string{"--token", token, "info"}, "kvstore-client: PermissionDenied: "},
	} {
		code, out, errOut := runClient(t, addr, s.args...)
		if code != 2 || out != "" || !strings.HasPrefix(errOut, s.wantErr) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 2 and %q", s.args, code, out, errOut, s.wantErr)
		}
	}
	if names := dirNames(t, dir); len(names) != 0 {
		t.Errorf("dir holds %q; want nothing", names)
	}
}

func TestBackupAndInfoUsage(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "kv.snap")
	// -o and --json have no variable: these must not stand in for them.
	t.Setenv("KVSTORE_O", path)
	t.Setenv("KVSTORE_JSON", "maybe")
	for _, s := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"backup"}, "backup needs -o FILE, or -o - for stdout"},
		{[]string{"backup", "-o", ""}, "backup needs -o FILE, or -o - for stdout"},
		{[]string{"backup", "x", "-o", path}, "backup takes 0 argument(s), got 1"},
		{[]string{"get", "k", "-o", path}, "-o applies to backup only"},
		{[]string{"info", "-o", path}, "-o applies to backup only"},
		{[]string{"backup", "-o", path, "--json"}, "--json applies to info and cluster status only"},
		{[]string{"get", "k", "--json"}, "--json applies to info and cluster status only"},
		{[]string{"info", "x"}, "info takes 0 argument(s), got 1"},
		{[]string{"backup", "-o", path, "--file", path}, "--file applies to set only"},
		{[]string{"info", "--ttl", "5s"}, "--ttl applies to set only"},
	} {
		code, out, errOut := runClientArgs(t, s.args...)
		want := "kvstore-client: " + s.wantErr + "\nRun 'kvstore-client --help' for usage.\n"
		if code != 2 || out != "" || errOut != want {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 2 and %q", s.args, code, out, errOut, want)
		}
	}
	if names := dirNames(t, dir); len(names) != 0 {
		t.Errorf("dir holds %q; want nothing", names)
	}

	// A backup is no thing to print on a terminal.
	var out ttyBuffer
	var errOut bytes.Buffer
	code := run([]string{"backup", "-o", "-"}, strings.NewReader(""), &out, &errOut)
	if want := "kvstore-client: backup -o - writes binary data: redirect stdout, or use -o FILE\n"; code != 2 || out.Len() != 0 || !strings.HasPrefix(errOut.String(), want) {
		t.Errorf("backup -o - to a terminal: exit %d, stdout %q, stderr %q; want 2 and %q", code, out.String(), errOut.String(), want)
	}
}

// testInfo is what testBackend.Info reports in the info tests.
func testInfo() *kvstorepb.InfoResponse {
	return &kvstorepb.InfoResponse{
		Keys:               3,
		KeysWithTtl:        1,
		Seq:                4242,
		MemoryBytes:        1572864,
		LogBytes:           12 << 20,
		LogSegments:        2,
		Fsync:              "everysec",
		SnapshotSeq:        4200,
		SnapshotAgeSeconds: 90,
		SnapshotBytes:      512,
		DataDir:            "/var/lib/kvstore",
		MaxKeyBytes:        1 << 10,
		MaxValueBytes:      1 << 20,
		MaxConnections:     4096,
	}
}

func TestInfoTable(t *testing.T) {
	mock := clock.NewMock()
	addr := startAdminServer(t, &testBackend{info: testInfo()}, mock, rpc.ServerOptions{})
	mock.Add(2*time.Hour + 3*time.Second)
	code, out, errOut := runClient(t, addr, "info")
	if code != 0 || errOut != "" {
		t.Fatalf("info: exit %d, stderr %q", code, errOut)
	}
	want := [][2]string{
		{"version", rpc.Version()},
		{"go version", "go"},
		{"uptime", "2h0m3s"},
		{"keys", "3"},
		{"keys with ttl", "1"},
		{"seq", "4242"},
		{"memory", "1.5 MiB (1572864 bytes)"},
		{"max memory", "none"},
		{"heap", ""},
		{"log size", "12.0 MiB (12582912 bytes)"},
		{"log segments", "2"},
		{"fsync", "everysec"},
		{"snapshot seq", "4200"},
		{"snapshot age", "1m30s"},
		{"snapshot size", "512 B"},
		{"data dir", "/var/lib/kvstore"},
		{"max key size", "1.0 KiB (1024 bytes)"},
		{"max value size", "1.0 MiB (1048576 bytes)"},
		{"max connections", "4096"},
		{"writes", "accepted"},
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(want) {
		t.Fatalf("info printed %d lines, want %d:\n%s", len(lines), len(want), out)
	}
	column := -1
	for i, w := range want {
		line := lines[i]
		rest, ok := strings.CutPrefix(line, w[0]+"  ")
		value := strings.TrimLeft(rest, " ")
		if !ok || !strings.HasPrefix(value, w[1]) || value == "" {
			t.Errorf("line %q: want %s then %q", line, w[0], w[1])
			continue
		}
		// One column of values.
		if at := len(line) - len(value); column == -1 {
			column = at
		} else if at != column {
			t.Errorf("line %q: value at column %d, others at %d", line, at, column)
		}
	}
}

// With no snapshot and no limits, the table says so rather than print 0s.
func TestInfoTableZeros(t *testing.T) {
	addr := startAdminServer(t, &testBackend{info: &kvstorepb.InfoResponse{WritesRefused: true}}, nil, rpc.ServerOptions{})
	code, out, errOut := runClient(t, addr, "info")
	if code != 0 {
		t.Fatalf("info: exit %d, %q", code, errOut)
	}
	for _, re := range []string{
		`(?m)^snapshot seq +none$`, `(?m)^snapshot age +-$`, `(?m)^max memory +none$`,
		`(?m)^max connections +none$`, `(?m)^keys +0$`, `(?m)^writes +REFUSED`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("info does not match %s:\n%s", re, out)
		}
	}
}

// info --json is the HTTP route's JSON: every field, zeros too, by its
// proto name.
func TestInfoJSON(t *testing.T) {
	addr := startAdminServer(t, &testBackend{info: testInfo()}, nil, rpc.ServerOptions{})
	// KVSTORE_JSON is no --json.
	t.Setenv("KVSTORE_JSON", "true")
	if code, out, _ := runClient(t, addr, "info"); code != 0 || strings.HasPrefix(out, "{") {
		t.Errorf("info with KVSTORE_JSON=true: exit %d, %q; want the table", code, out)
	}
	code, out, errOut := runClient(t, addr, "info", "--json")
	if code != 0 || errOut != "" || !strings.HasSuffix(out, "}\n") {
		t.Fatalf("info --json: exit %d, stderr %q, stdout %q", code, errOut, out)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("info --json is not JSON: %v\n%s", err, out)
	}
	// uint64s are strings in protojson.
	for field, want := range map[string]any{
		"keys": "3", "seq": "4242", "fsync": "everysec", "version": rpc.Version(),
		"max_memory_bytes": "0", "writes_refused": false, "data_dir": "/var/lib/kvstore",
	} {
		if got[field] != want {
			t.Errorf("%s = %#v, want %#v", field, got[field], want)
		}
	}
	if n := len(got); n != 20 {
		t.Errorf("%d fields, want all 20 of InfoResponse:\n%s", n, out)
	}
}

// On a terminal a backup refreshes a progress line with \r, and blanks it
// for the summary.
func TestBackupProgressOnTerminal(t *testing.T) {
	addr := startAdminServer(t, &testBackend{}, nil, rpc.ServerOptions{})
	setKeys(t, addr)
	defer func(d time.Duration) { progressInterval = d }(progressInterval)
	progressInterval = 0 // a line for every message
	var out bytes.Buffer
	var errOut ttyBuffer
	path := filepath.Join(t.TempDir(), "kv.snap")
	if code := run([]string{"--addr", addr, "backup", "-o", path}, strings.NewReader(""), &out, &errOut); code != 0 {
		t.Fatalf("backup: exit %d, %q", code, errOut.String())
	}
	// The summary follows the \r that blanks the progress line.
	all := errOut.String()
	i := strings.LastIndex(all, "\r")
	progress, summary := all[:i+1], all[i+1:]
	parseSummary(t, summary)
	if !regexp.MustCompile(`^(\rbackup: \d+(\.\d [KM]iB| B), 3 keys, \d+\.\d MiB/s *)+\r +\r$`).MatchString(progress) {
		t.Errorf("stderr %q: want progress lines, blanked, before the summary", all)
	}
	// Without a terminal, the summary alone (TestBackupToFile).
}
