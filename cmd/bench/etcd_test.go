package main

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"
)

// fakeEtcd is etcd's KV service as far as the bench uses it, over a map:
// a hand-written grpc.ServiceDesc (no etcd modules), requests decoded with
// protowire through the bench's own rawCodec. It records what it saw.
type fakeEtcd struct {
	mu     sync.Mutex
	m      map[string]string
	puts   map[string]string // every key put, with its last value
	ranges map[string]int    // keys asked for
	dels   map[string]int    // keys deleted, asked for
	// bad counts requests the fake could not decode or that had no key.
	bad int
}

// fakeField reads the bytes fields of a request.
func fakeFields(b []byte) (map[protowire.Number][]byte, bool) {
	out := map[protowire.Number][]byte{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || typ != protowire.BytesType {
			return nil, false
		}
		b = b[n:]
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return nil, false
		}
		out[num] = v
		b = b[n:]
	}
	return out, true
}

// fakeHeader is a ResponseHeader{cluster_id = 1, revision = 3} as field 1
// of every response, as etcd sends one.
func fakeHeader() []byte {
	var h []byte
	h = protowire.AppendTag(h, 1, protowire.VarintType)
	h = protowire.AppendVarint(h, 42)
	h = protowire.AppendTag(h, 3, protowire.VarintType)
	h = protowire.AppendVarint(h, 7)
	b := protowire.AppendTag(nil, 1, protowire.BytesType)
	return protowire.AppendBytes(b, h)
}

func (f *fakeEtcd) request(req []byte) (key string, fields map[protowire.Number][]byte, ok bool) {
	fields, ok = fakeFields(req)
	k, hasKey := fields[1]
	if !ok || !hasKey || len(k) == 0 {
		f.bad++
		return "", nil, false
	}
	return string(k), fields, true
}

func (f *fakeEtcd) put(req []byte) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	if key, fields, ok := f.request(req); ok {
		f.m[key] = string(fields[2])
		f.puts[key] = string(fields[2])
	}
	return fakeHeader()
}

func (f *fakeEtcd) rangeKey(req []byte) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := fakeHeader()
	key, _, ok := f.request(req)
	if !ok {
		return resp
	}
	f.ranges[key]++
	v, found := f.m[key]
	if !found {
		return resp
	}
	// KeyValue{key = 1, value = 5}, then count = 4.
	var kv []byte
	kv = protowire.AppendTag(kv, 1, protowire.BytesType)
	kv = protowire.AppendString(kv, key)
	kv = protowire.AppendTag(kv, 5, protowire.BytesType)
	kv = protowire.AppendString(kv, v)
	resp = protowire.AppendTag(resp, 2, protowire.BytesType)
	resp = protowire.AppendBytes(resp, kv)
	resp = protowire.AppendTag(resp, 4, protowire.VarintType)
	return protowire.AppendVarint(resp, 1)
}

func (f *fakeEtcd) deleteRange(req []byte) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := fakeHeader()
	key, _, ok := f.request(req)
	if !ok {
		return resp
	}
	f.dels[key]++
	if _, found := f.m[key]; found {
		delete(f.m, key)
		// deleted = 2, then prev_kvs = 3 (as if prev_kv were asked).
		resp = protowire.AppendTag(resp, 2, protowire.VarintType)
		resp = protowire.AppendVarint(resp, 1)
		resp = protowire.AppendTag(resp, 3, protowire.BytesType)
		resp = protowire.AppendBytes(resp, protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), key))
	}
	return resp
}

// fakeEtcdMethod is the grpc handler of one fake method.
func fakeEtcdMethod(name string, do func(*fakeEtcd, []byte) []byte) grpc.MethodDesc {
	return grpc.MethodDesc{
		MethodName: name,
		Handler: func(srv any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			var req []byte
			if err := dec(&req); err != nil {
				return nil, err
			}
			return do(srv.(*fakeEtcd), req), nil
		},
	}
}

var fakeEtcdDesc = grpc.ServiceDesc{
	ServiceName: "etcdserverpb.KV",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{
		fakeEtcdMethod("Put", (*fakeEtcd).put),
		fakeEtcdMethod("Range", (*fakeEtcd).rangeKey),
		fakeEtcdMethod("DeleteRange", (*fakeEtcd).deleteRange),
	},
}

// startFakeEtcd serves a fakeEtcd on a loopback port until cleanup.
func startFakeEtcd(t *testing.T) (*fakeEtcd, string) {
	t.Helper()
	f := &fakeEtcd{m: map[string]string{}, puts: map[string]string{}, ranges: map[string]int{}, dels: map[string]int{}}
	srv := grpc.NewServer(grpc.ForceServerCodec(rawCodec{}))
	srv.RegisterService(&fakeEtcdDesc, f)
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
	return f, lis.Addr().String()
}

func TestEtcdDrivesTheKVAPI(t *testing.T) {
	f, addr := startFakeEtcd(t)
	const keys, requests = 20, 300
	code, out, errOut := runBench(t, "--etcd", "--addr", addr, "--requests", "300", "--clients", "4", "--conns", "2",
		"--keys", "20", "--mix", "50:30:20", "--value-size", "24", "--preload", "--json", "--progress", "0")
	if code != exitOK {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	var rep report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.Mode != "etcd" || rep.Addr != addr || rep.Conns != 2 || rep.Total.Count != requests || rep.Total.Errors != 0 || len(rep.Ops) != 3 {
		t.Errorf("report %+v; want mode etcd, %s, 2 conns, %d ok, 3 ops", rep, addr, requests)
	}
	if !strings.Contains(errOut, "etcd v3 KV API at "+addr) || !strings.Contains(errOut, "preloaded 20 keys") {
		t.Errorf("stderr %q does not name etcd and the preload", errOut)
	}

	value := randomValue(24, 1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.bad != 0 {
		t.Errorf("%d requests the fake could not decode", f.bad)
	}
	// The preload put every key.
	if len(f.puts) != keys {
		t.Errorf("puts of %d keys, want all %d", len(f.puts), keys)
	}
	for k, v := range f.puts {
		if !strings.HasPrefix(k, "key:") || v != value {
			t.Errorf("put %q = %q; want a key:... key and the value %q", k, v, value)
		}
	}
	if len(f.ranges) == 0 || len(f.dels) == 0 {
		t.Fatalf("ranges of %d keys, deletes of %d keys; want both", len(f.ranges), len(f.dels))
	}
	for _, seen := range []map[string]int{f.ranges, f.dels} {
		for k := range seen {
			if !strings.HasPrefix(k, "key:") {
				t.Errorf("request for key %q, not one of the bench's", k)
			}
		}
	}
	// The report's found counts come from the responses: after the
	// preload some gets hit and some deletes removed a key.
	for _, o := range rep.Ops {
		if (o.Op == "get" || o.Op == "del") && o.Found == 0 {
			t.Errorf("%s found nothing: %+v", o.Op, o)
		}
	}
}

func TestEtcdResponsesDecode(t *testing.T) {
	countOnly := protowire.AppendVarint(protowire.AppendTag(fakeHeader(), 4, protowire.VarintType), 3)
	for _, tc := range []struct {
		name  string
		resp  []byte
		found bool
	}{
		{"empty", nil, false},
		{"header only", fakeHeader(), false},
		{"count only", countOnly, true},
		{"kvs", (&fakeEtcd{m: map[string]string{"k": "v"}, ranges: map[string]int{}}).rangeKey(etcdKeyRequest("k")), true},
	} {
		if found, err := etcdRangeFound(tc.resp); err != nil || found != tc.found {
			t.Errorf("%s: found %v, %v; want %v", tc.name, found, err, tc.found)
		}
	}
	if _, err := etcdRangeFound([]byte{0x12, 0x05, 'a'}); codeOf(err).String() != "Internal" {
		t.Errorf("truncated response: %v, want Internal", err)
	}
	// deleted is field 2 of DeleteRangeResponse; 3 is prev_kvs.
	deleted := protowire.AppendVarint(protowire.AppendTag(fakeHeader(), 2, protowire.VarintType), 1)
	if d, err := etcdDeleted(deleted); err != nil || !d {
		t.Errorf("deleted 1: %v, %v", d, err)
	}
	notDeleted := protowire.AppendVarint(protowire.AppendTag(fakeHeader(), 2, protowire.VarintType), 0)
	notDeleted = protowire.AppendBytes(protowire.AppendTag(notDeleted, 3, protowire.BytesType), []byte{0x0a, 0x01, 'k'})
	if d, err := etcdDeleted(notDeleted); err != nil || d {
		t.Errorf("deleted 0 with prev_kvs: %v, %v", d, err)
	}
	if d, err := etcdDeleted(fakeHeader()); err != nil || d {
		t.Errorf("deleted absent: %v, %v", d, err)
	}
	var c rawCodec
	if _, err := c.Marshal("string"); err == nil {
		t.Error("Marshal of a string: no error")
	}
	var s string
	if err := c.Unmarshal([]byte("x"), &s); err == nil {
		t.Error("Unmarshal into a *string: no error")
	}
}

func TestEtcdUsageErrorsExit2(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--etcd", "--compare"}, "--etcd drives etcd at --addr: it excludes"},
		{[]string{"--etcd", "--inproc"}, "it excludes --inproc"},
		{[]string{"--etcd", "--serve-baseline", "127.0.0.1:0"}, "it excludes"},
		{[]string{"--etcd", "--ttl", "30s"}, "etcd needs leases"},
		{[]string{"--etcd", "--tls-ca", "ca.pem"}, "--tls-ca does not apply"},
		{[]string{"--etcd", "--token", "t"}, "--token does not apply"},
		{[]string{"--addr", "127.0.0.1:1,,127.0.0.1:2"}, "an empty address in the list"},
	} {
		code, out, errOut := runBench(t, tc.args...)
		if code != exitUsage || out != "" || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, stdout %.100q, stderr %q; want exit 2 and %q", tc.args, code, out, errOut, tc.want)
		}
	}
}

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	accepted atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}

// startCountingBaseline serves the baseline (kvstore's API) in-process on
// a loopback port that counts its connections, until cleanup.
func startCountingBaseline(t *testing.T) (*countingListener, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: lis}
	srv := newBaselineServer()
	served := make(chan struct{})
	go func() {
		srv.Serve(cl)
		close(served)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-served
	})
	return cl, lis.Addr().String()
}

func TestAddrListSpreadsConnectionsOverEveryAddress(t *testing.T) {
	for _, tc := range []struct {
		conns     string
		wantConns int
		perServer [2]int64
	}{
		{"1", 2, [2]int64{1, 1}}, // fewer than addresses: one each
		{"3", 3, [2]int64{2, 1}}, // round-robin
	} {
		t.Run("conns="+tc.conns, func(t *testing.T) {
			l1, a1 := startCountingBaseline(t)
			l2, a2 := startCountingBaseline(t)
			addrs := a1 + "," + a2
			code, out, errOut := runBench(t, "--addr", addrs, "--conns", tc.conns, "--requests", "200",
				"--clients", "4", "--keys", "10", "--mix", "50:30:20", "--json", "--progress", "0")
			if code != exitOK {
				t.Fatalf("exit %d, stderr %s", code, errOut)
			}
			var rep report
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if rep.Mode != "grpc" || rep.Addr != addrs || rep.Conns != tc.wantConns || rep.Total.Count != 200 || rep.Total.Errors != 0 {
				t.Errorf("report %+v; want grpc, %s, %d conns, 200 ok", rep, addrs, tc.wantConns)
			}
			if got := [2]int64{l1.accepted.Load(), l2.accepted.Load()}; got != tc.perServer {
				t.Errorf("connections per server %v, want %v", got, tc.perServer)
			}
		})
	}
}
