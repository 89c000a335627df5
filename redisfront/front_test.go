package redisfront

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
	"golang.org/x/net/netutil"

	"kvstore/actor"
	"kvstore/rpc"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// front is a Redis front on a loopback port over an actor without a log,
// on a mock clock.
type front struct {
	t       *testing.T
	clock   *clock.Mock
	actor   *actor.Actor
	srv     *Server
	addr    string
	batches atomic.Int64 // requests the actor took
}

type frontOpts struct {
	rules actor.Rules
	auth  *rpc.Auth
	// writeTimeout is Config.WriteTimeout; maxConns, when set, bounds
	// the connections as --max-connections does.
	writeTimeout time.Duration
	maxConns     int
}

func newFront(t *testing.T, o frontOpts) *front {
	t.Helper()
	f := &front{t: t, clock: clock.NewMock()}
	f.clock.Set(time.Unix(1_700_000_000, 0))
	f.actor = actor.New(actor.Config{Clock: f.clock, ExpireInterval: -1, Rules: o.rules,
		ObserveBatch: func(int) { f.batches.Add(1) }})
	b := NewActorBackend(f.clock)
	b.Set(f.actor)
	f.srv = NewServer(Config{Backend: b, Auth: o.auth, MaxKeyBytes: 1 << 10, MaxValueBytes: 1 << 20,
		MaxMemory: o.rules.MaxMemory, Fsync: "always", Clock: f.clock, RequestTimeout: 10 * time.Second,
		WriteTimeout: o.writeTimeout})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if o.maxConns > 0 {
		lis = netutil.LimitListener(lis, o.maxConns)
	}
	f.addr = lis.Addr().String()
	served := make(chan error, 1)
	go func() { served <- f.srv.Serve(lis) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := f.srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve = %v; want ErrServerClosed", err)
		}
		f.actor.Stop()
	})
	return f
}

// client is a go-redis client with its default settings (RESP3 through
// HELLO 3, then CLIENT SETINFO), unless o changes them.
func (f *front) client(o *redis.Options) *redis.Client {
	f.t.Helper()
	if o == nil {
		o = &redis.Options{}
	}
	o.Addr = f.addr
	o.MaxRetries = -1
	c := redis.NewClient(o)
	f.t.Cleanup(func() { c.Close() })
	return c
}

func TestStringCommands(t *testing.T) {
	f := newFront(t, frontOpts{})
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprintf("resp%d", proto), func(t *testing.T) {
			c := f.client(&redis.Options{Protocol: proto})
			ctx := context.Background()
			p := fmt.Sprintf("p%d:", proto)
			k := func(s string) string { return p + s }
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			must(c.Set(ctx, k("a"), "1", 0).Err())
			if v, err := c.Get(ctx, k("a")).Result(); err != nil || v != "1" {
				t.Fatalf("GET = %q, %v", v, err)
			}
			if _, err := c.Get(ctx, k("missing")).Result(); !errors.Is(err, redis.Nil) {
				t.Fatalf("GET missing: %v; want redis.Nil", err)
			}
			if ok, _ := c.SetNX(ctx, k("a"), "2", 0).Result(); ok {
				t.Error("SETNX on an existing key succeeded")
			}
			if ok, _ := c.SetNX(ctx, k("n"), "2", 0).Result(); !ok {
				t.Error("SETNX on a new key failed")
			}
			if old, err := c.SetArgs(ctx, k("a"), "3", redis.SetArgs{Get: true}).Result(); err != nil || old != "1" {
				t.Errorf("SET GET = %q, %v", old, err)
			}
			if _, err := c.SetArgs(ctx, k("absent"), "x", redis.SetArgs{Mode: "XX"}).Result(); !errors.Is(err, redis.Nil) {
				t.Errorf("SET XX on an absent key: %v; want nil reply", err)
			}
			if old, err := c.Do(ctx, "GETSET", k("a"), "4").Text(); err != nil || old != "3" {
				t.Errorf("GETSET = %q, %v", old, err)
			}
			if v, err := c.GetDel(ctx, k("a")).Result(); err != nil || v != "4" {
				t.Errorf("GETDEL = %q, %v", v, err)
			}
			if n, _ := c.Exists(ctx, k("a"), k("n"), k("n")).Result(); n != 2 {
				t.Errorf("EXISTS = %d; want 2 (a gone, n counted twice)", n)
			}
			must(c.MSet(ctx, k("m1"), "x", k("m2"), "y").Err())
			if vs, err := c.MGet(ctx, k("m1"), k("nope"), k("m2")).Result(); err != nil || len(vs) != 3 || vs[0] != "x" || vs[1] != nil || vs[2] != "y" {
				t.Errorf("MGET = %v, %v", vs, err)
			}
			if n, _ := c.Del(ctx, k("m1"), k("m2"), k("nope")).Result(); n != 2 {
				t.Errorf("DEL = %d; want 2", n)
			}
			if n, _ := c.Unlink(ctx, k("n")).Result(); n != 1 {
				t.Errorf("UNLINK = %d; want 1", n)
			}
			if n, _ := c.Incr(ctx, k("i")).Result(); n != 1 {
				t.Errorf("INCR = %d", n)
			}
			if n, _ := c.IncrBy(ctx, k("i"), 41).Result(); n != 42 {
				t.Errorf("INCRBY = %d", n)
			}
			if n, _ := c.DecrBy(ctx, k("i"), 2).Result(); n != 40 {
				t.Errorf("DECRBY = %d", n)
			}
			if n, _ := c.Decr(ctx, k("i")).Result(); n != 39 {
				t.Errorf("DECR = %d", n)
			}
			if f, err := c.IncrByFloat(ctx, k("f"), 10.5).Result(); err != nil || f != 10.5 {
				t.Errorf("INCRBYFLOAT = %v, %v", f, err)
			}
			if f, _ := c.IncrByFloat(ctx, k("f"), 0.1).Result(); f != 10.6 {
				t.Errorf("INCRBYFLOAT = %v; want 10.6", f)
			}
			must(c.Set(ctx, k("s"), "hello", 0).Err())
			if err := c.Incr(ctx, k("s")).Err(); err == nil || err.Error() != "ERR value is not an integer or out of range" {
				t.Errorf("INCR on a string: %v", err)
			}
			if n, _ := c.Append(ctx, k("s"), " world").Result(); n != 11 {
				t.Errorf("APPEND = %d", n)
			}
			if n, _ := c.StrLen(ctx, k("s")).Result(); n != 11 {
				t.Errorf("STRLEN = %d", n)
			}
			if v, _ := c.GetRange(ctx, k("s"), 0, 4).Result(); v != "hello" {
				t.Errorf("GETRANGE 0 4 = %q", v)
			}
			if v, _ := c.GetRange(ctx, k("s"), -5, -1).Result(); v != "world" {
				t.Errorf("GETRANGE -5 -1 = %q", v)
			}
			if n, _ := c.SetRange(ctx, k("s"), 6, "WORLD").Result(); n != 11 {
				t.Errorf("SETRANGE = %d", n)
			}
			if v, _ := c.Get(ctx, k("s")).Result(); v != "hello WORLD" {
				t.Errorf("after SETRANGE: %q", v)
			}
			if ty, _ := c.Type(ctx, k("s")).Result(); ty != "string" {
				t.Errorf("TYPE = %q", ty)
			}
			if ty, _ := c.Type(ctx, k("nope")).Result(); ty != "none" {
				t.Errorf("TYPE missing = %q", ty)
			}
			bin := "\x00\xff\r\n\xfe"
			must(c.Set(ctx, k("bin\x00"), bin, 0).Err())
			if v, _ := c.Get(ctx, k("bin\x00")).Result(); v != bin {
				t.Errorf("binary value = %q", v)
			}
			if s, _ := c.Ping(ctx).Result(); s != "PONG" {
				t.Errorf("PING = %q", s)
			}
			if s, _ := c.Echo(ctx, "hi").Result(); s != "hi" {
				t.Errorf("ECHO = %q", s)
			}
			if err := c.Do(ctx, "SELECT", "0").Err(); err != nil {
				t.Errorf("SELECT 0: %v", err)
			}
			if err := c.Do(ctx, "SELECT", "1").Err(); err == nil || err.Error() != "ERR DB index is out of range" {
				t.Errorf("SELECT 1: %v", err)
			}
			if n, _ := c.DBSize(ctx).Result(); n == 0 {
				t.Error("DBSIZE = 0")
			}
			if tm, err := c.Time(ctx).Result(); err != nil || !tm.Equal(f.clock.Now()) {
				t.Errorf("TIME = %v, %v; want %v", tm, err, f.clock.Now())
			}
		})
	}
}

func TestExpiryOnTheMockClock(t *testing.T) {
	f := newFront(t, frontOpts{})
	c := f.client(nil)
	ctx := context.Background()
	if err := c.Set(ctx, "t", "v", 10*time.Second).Err(); err != nil {
		t.Fatal(err)
	}
	if d, _ := c.TTL(ctx, "t").Result(); d != 10*time.Second {
		t.Errorf("TTL = %v; want 10s", d)
	}
	f.clock.Add(4 * time.Second)
	if d, _ := c.PTTL(ctx, "t").Result(); d != 6*time.Second {
		t.Errorf("PTTL = %v; want 6s", d)
	}
	if ts, _ := c.ExpireTime(ctx, "t").Result(); ts != time.Duration(f.clock.Now().Unix()+6)*time.Second {
		t.Errorf("EXPIRETIME = %v", ts)
	}
	f.clock.Add(6 * time.Second)
	if _, err := c.Get(ctx, "t").Result(); !errors.Is(err, redis.Nil) {
		t.Errorf("GET after the deadline: %v; want nil", err)
	}
	if d, _ := c.TTL(ctx, "t").Result(); d != -2 {
		t.Errorf("TTL of an expired key = %v; want -2", d)
	}

	c.Set(ctx, "e", "v", 0)
	if d, _ := c.TTL(ctx, "e").Result(); d != -1 {
		t.Errorf("TTL without a deadline = %v; want -1", d)
	}
	if ok, _ := c.ExpireXX(ctx, "e", time.Minute).Result(); ok {
		t.Error("EXPIRE XX without a deadline applied")
	}
	if ok, _ := c.ExpireNX(ctx, "e", time.Minute).Result(); !ok {
		t.Error("EXPIRE NX without a deadline not applied")
	}
	if ok, _ := c.ExpireGT(ctx, "e", 30*time.Second).Result(); ok {
		t.Error("EXPIRE GT with an earlier deadline applied")
	}
	if ok, _ := c.ExpireLT(ctx, "e", 30*time.Second).Result(); !ok {
		t.Error("EXPIRE LT with an earlier deadline not applied")
	}
	if ok, _ := c.Persist(ctx, "e").Result(); !ok {
		t.Error("PERSIST of a key with a deadline")
	}
	if ok, _ := c.PExpireAt(ctx, "e", f.clock.Now().Add(-time.Second)).Result(); !ok {
		t.Error("PEXPIREAT in the past")
	}
	if n, _ := c.Exists(ctx, "e").Result(); n != 0 {
		t.Error("PEXPIREAT in the past left the key")
	}
	c.Set(ctx, "z", "v", 0)
	if ok, _ := c.Expire(ctx, "z", 0).Result(); !ok {
		t.Error("EXPIRE 0")
	}
	if n, _ := c.Exists(ctx, "z").Result(); n != 0 {
		t.Error("EXPIRE 0 left the key")
	}
	c.Set(ctx, "g", "v", 0)
	if v, _ := c.GetEx(ctx, "g", 5*time.Second).Result(); v != "v" {
		t.Errorf("GETEX = %q", v)
	}
	if d, _ := c.TTL(ctx, "g").Result(); d != 5*time.Second {
		t.Errorf("TTL after GETEX EX 5 = %v", d)
	}
	if err := c.Do(ctx, "GETEX", "g", "PERSIST").Err(); err != nil {
		t.Fatal(err)
	}
	if d, _ := c.TTL(ctx, "g").Result(); d != -1 {
		t.Errorf("TTL after GETEX PERSIST = %v", d)
	}
	if err := c.Do(ctx, "SETEX", "se", 3, "v").Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, "PSETEX", "pse", "1500", "v").Err(); err != nil {
		t.Fatal(err)
	}
	if d, _ := c.PTTL(ctx, "pse").Result(); d != 1500*time.Millisecond {
		t.Errorf("PTTL after PSETEX 1500 = %v", d)
	}
	if err := c.Do(ctx, "SET", "k", "v", "EX", "0").Err(); err == nil || err.Error() != "ERR invalid expire time in 'set' command" {
		t.Errorf("SET EX 0: %v", err)
	}
	if err := c.Do(ctx, "SET", "k", "v", "KEEPTTL", "EX", "5").Err(); err == nil || err.Error() != "ERR syntax error" {
		t.Errorf("SET KEEPTTL EX: %v", err)
	}
	c.Set(ctx, "kt", "v", time.Minute)
	if err := c.SetArgs(ctx, "kt", "w", redis.SetArgs{KeepTTL: true}).Err(); err != nil {
		t.Fatal(err)
	}
	if d, _ := c.TTL(ctx, "kt").Result(); d != time.Minute {
		t.Errorf("TTL after SET KEEPTTL = %v", d)
	}
}

func TestErrorTexts(t *testing.T) {
	f := newFront(t, frontOpts{rules: actor.Rules{MaxMemory: 4096}})
	c := f.client(nil)
	ctx := context.Background()
	for _, tc := range []struct {
		args []any
		want string
	}{
		{[]any{"NOSUCH", "a", "b"}, "ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b' "},
		{[]any{"nosuch"}, "ERR unknown command 'nosuch', with args beginning with: "},
		{[]any{"GET"}, "ERR wrong number of arguments for 'get' command"},
		{[]any{"SET", "a", "b", "BOGUS"}, "ERR syntax error"},
		{[]any{"MSET", "a", "b", "c"}, "ERR wrong number of arguments for 'mset' command"},
		{[]any{"INCRBY", "a", "x"}, "ERR value is not an integer or out of range"},
		{[]any{"INCRBYFLOAT", "a", "x"}, "ERR value is not a valid float"},
		{[]any{"SETRANGE", "a", "-1", "x"}, "ERR offset is out of range"},
		{[]any{"EXPIRE", "a", "10", "NX", "XX"}, "ERR NX and XX, GT or LT options at the same time are not compatible"},
		{[]any{"EXPIRE", "a", "10", "GT", "LT"}, "ERR GT and LT options at the same time are not compatible"},
		{[]any{"SCAN", "x"}, "ERR invalid cursor"},
		{[]any{"EXEC"}, "ERR EXEC without MULTI"},
		{[]any{"DISCARD"}, "ERR DISCARD without MULTI"},
		{[]any{"WATCH", "a"}, "ERR WATCH is not supported by kvstore yet: use MULTI/EXEC (applied as one unit) or the atomic commands (SET NX/XX/GET, INCR, MSETNX)"},
		{[]any{"FLUSHDB", "now"}, "ERR syntax error"},
		{[]any{"HELLO", "4"}, "NOPROTO unsupported protocol version"},
		{[]any{"AUTH", "x"}, "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"},
		{[]any{"SET", "big", strings.Repeat("v", 8192)}, "OOM command not allowed when used memory > 'maxmemory'."},
	} {
		if err := c.Do(ctx, tc.args...).Err(); err == nil || err.Error() != tc.want {
			t.Errorf("%v: %v; want %q", tc.args, err, tc.want)
		}
	}
	// Overflow is the machine's, on the owner.
	c.Set(ctx, "max", "9223372036854775807", 0)
	if err := c.Incr(ctx, "max").Err(); err == nil || err.Error() != "ERR increment or decrement would overflow" {
		t.Errorf("INCR past int64: %v", err)
	}
}

// One refused command of a pipeline fails alone; the pipeline reaches
// the actor in a few requests, not one per command.
func TestPipelineIsBatched(t *testing.T) {
	f := newFront(t, frontOpts{rules: actor.Rules{MaxValueBytes: 100}})
	c := f.client(nil)
	ctx := context.Background()
	c.Ping(ctx) // the handshake's own commands, out of the count
	before := f.batches.Load()
	const n = 1000
	p := c.Pipeline()
	var cmds []redis.Cmder
	for i := range n {
		switch i % 3 {
		case 0:
			cmds = append(cmds, p.Set(ctx, fmt.Sprintf("k%d", i), i, 0))
		case 1:
			cmds = append(cmds, p.Incr(ctx, "counter"))
		default:
			cmds = append(cmds, p.Get(ctx, fmt.Sprintf("k%d", i-2)))
		}
	}
	bad := p.Append(ctx, "k0", strings.Repeat("x", 200))
	after := p.Get(ctx, "k0")
	p.Exec(ctx)
	for i, cmd := range cmds {
		if cmd.Err() != nil {
			t.Fatalf("command %d: %v", i, cmd.Err())
		}
		if g, ok := cmd.(*redis.StringCmd); ok && g.Val() != fmt.Sprint(i-2) {
			t.Fatalf("command %d = %q; want %d", i, g.Val(), i-2)
		}
	}
	if got := cmds[n-3].(*redis.IntCmd).Val(); got != n/3 {
		t.Errorf("counter = %d; want %d", got, n/3)
	}
	if err := bad.Err(); err == nil || err.Error() != "ERR string exceeds maximum allowed size (proto-max-bulk-len)" {
		t.Errorf("APPEND past the limit: %v", err)
	}
	if v := after.Val(); v != "0" {
		t.Errorf("GET after the refused APPEND = %q; want 0, unchanged", v)
	}
	if b := f.batches.Load() - before; b > n/10 {
		t.Errorf("%d commands took %d requests to the actor; want batches", n+2, b)
	}
}

// writeAuthFile makes an auth file with a token per role.
func writeAuthFile(t *testing.T) (auth *rpc.Auth, tokens map[rpc.Role]string) {
	t.Helper()
	tokens = map[rpc.Role]string{}
	var lines []string
	for _, r := range []rpc.Role{rpc.RoleRead, rpc.RoleWrite, rpc.RoleAdmin} {
		tok, line, err := rpc.NewToken(r, r.String()+"-user")
		if err != nil {
			t.Fatal(err)
		}
		tokens[r] = tok
		lines = append(lines, line)
	}
	path := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	auth, err := rpc.LoadAuth(path)
	if err != nil {
		t.Fatal(err)
	}
	return auth, tokens
}

func TestAuthAndRoles(t *testing.T) {
	auth, tokens := writeAuthFile(t)
	f := newFront(t, frontOpts{auth: auth})
	ctx := context.Background()

	none := f.client(&redis.Options{Protocol: 2})
	if err := none.Get(ctx, "a").Err(); err == nil || err.Error() != "NOAUTH Authentication required." {
		t.Errorf("GET without AUTH: %v", err)
	}
	wrong := f.client(&redis.Options{Password: "nope"})
	if err := wrong.Ping(ctx).Err(); err == nil || !strings.HasPrefix(err.Error(), "WRONGPASS") {
		t.Errorf("wrong token: %v", err)
	}
	read := f.client(&redis.Options{Password: tokens[rpc.RoleRead]})
	write := f.client(&redis.Options{Username: "write-user", Password: tokens[rpc.RoleWrite]})
	admin := f.client(&redis.Options{Password: tokens[rpc.RoleAdmin], Protocol: 2})
	if err := write.Set(ctx, "a", "1", 0).Err(); err != nil {
		t.Fatalf("SET with a write token: %v", err)
	}
	if v, err := read.Get(ctx, "a").Result(); err != nil || v != "1" {
		t.Errorf("GET with a read token = %q, %v", v, err)
	}
	if err := read.Set(ctx, "a", "2", 0).Err(); err == nil || !strings.HasPrefix(err.Error(), "NOPERM") {
		t.Errorf("SET with a read token: %v", err)
	}
	if err := write.ConfigGet(ctx, "maxmemory").Err(); err == nil || !strings.HasPrefix(err.Error(), "NOPERM") {
		t.Errorf("CONFIG GET with a write token: %v", err)
	}
	if err := write.FlushDB(ctx).Err(); err == nil || !strings.HasPrefix(err.Error(), "NOPERM") {
		t.Errorf("FLUSHDB with a write token: %v", err)
	}
	if n, err := admin.Exists(ctx, "a").Result(); err != nil || n != 1 {
		t.Errorf("a after a refused FLUSHDB: %d, %v", n, err)
	}
	if m, err := admin.ConfigGet(ctx, "append*").Result(); err != nil || m["appendonly"] != "yes" || m["appendfsync"] != "always" {
		t.Errorf("CONFIG GET append* with an admin token = %v, %v", m, err)
	}
	// The token's name is a username too; another name is refused.
	other := f.client(&redis.Options{Username: "read-user", Password: tokens[rpc.RoleWrite]})
	if err := other.Ping(ctx).Err(); err == nil || !strings.HasPrefix(err.Error(), "WRONGPASS") {
		t.Errorf("a write token under the read token's name: %v", err)
	}
}

// HELLO's reply is a map in RESP3 and a flat array in RESP2, as Redis 7.
func TestHelloShapes(t *testing.T) {
	f := newFront(t, frontOpts{})
	for _, tc := range []struct {
		hello string
		want  string
	}{
		{"HELLO 3", "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n"},
		{"HELLO 2", "*14\r\n$6\r\nserver\r\n$5\r\nredis\r\n"},
	} {
		nc, err := net.Dial("tcp", f.addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(nc, "%s\r\n", tc.hello)
		buf := make([]byte, len(tc.want))
		if _, err := readFull(bufio.NewReader(nc), buf); err != nil || string(buf) != tc.want {
			t.Errorf("%s: %q, %v; want a reply starting %q", tc.hello, buf, err, tc.want)
		}
		nc.Close()
	}
}

func readFull(r *bufio.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// A protocol error gets Redis' error reply, then the connection closes.
func TestProtocolErrorCloses(t *testing.T) {
	f := newFront(t, frontOpts{})
	nc, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	fmt.Fprint(nc, "*1\r\n$3\r\nget\r\n*x\r\n")
	r := bufio.NewReader(nc)
	line, _ := r.ReadString('\n')
	if line != "-ERR wrong number of arguments for 'get' command\r\n" {
		t.Errorf("first reply %q", line)
	}
	line, _ = r.ReadString('\n')
	if line != "-ERR Protocol error: invalid multibulk length\r\n" {
		t.Errorf("second reply %q", line)
	}
	if _, err := r.ReadByte(); err == nil {
		t.Error("connection still open after a protocol error")
	}
}

// A full SCAN iteration while keys are written returns every key that
// was there throughout, with MATCH applied; KEYS returns them all.
func TestScanIteration(t *testing.T) {
	f := newFront(t, frontOpts{})
	c := f.client(nil)
	ctx := context.Background()
	want := map[string]bool{}
	for i := range 500 {
		k := fmt.Sprintf("key:%d", i)
		c.Set(ctx, k, "v", 0)
		want[k] = true
	}
	c.Set(ctx, "other", "v", 0)
	seen := map[string]bool{}
	cursor := uint64(0)
	for i := 0; ; i++ {
		keys, next, err := c.Scan(ctx, cursor, "key:*", 20).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			seen[k] = true
		}
		c.Set(ctx, fmt.Sprintf("new:%d", i), "v", 0)
		c.Del(ctx, fmt.Sprintf("key:%d", 499-i)) // removed during the scan: may or may not be seen
		delete(want, fmt.Sprintf("key:%d", 499-i))
		if cursor = next; cursor == 0 {
			break
		}
	}
	for k := range want {
		if !seen[k] {
			t.Errorf("SCAN missed %s", k)
		}
	}
	if seen["other"] {
		t.Error("SCAN MATCH key:* returned other")
	}
	keys, err := c.Keys(ctx, "new:*").Result()
	if err != nil || len(keys) == 0 {
		t.Errorf("KEYS new:* = %d keys, %v", len(keys), err)
	}
}

func TestServerCommands(t *testing.T) {
	f := newFront(t, frontOpts{rules: actor.Rules{MaxMemory: 1 << 30}})
	c := f.client(nil)
	ctx := context.Background()
	c.Set(ctx, "a", "1", time.Minute)
	info, err := c.Info(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"redis_version:7.2.0", "connected_clients:1", "maxmemory:1073741824", "aof_enabled:1", "db0:keys=1,expires=1"} {
		if !strings.Contains(info, want) {
			t.Errorf("INFO lacks %q:\n%s", want, info)
		}
	}
	if mem, _ := c.Info(ctx, "memory").Result(); strings.Contains(mem, "# Server") || !strings.Contains(mem, "used_memory:") {
		t.Errorf("INFO memory:\n%s", mem)
	}
	if n, _ := c.Do(ctx, "COMMAND", "COUNT").Int64(); n != int64(len(commands)) {
		t.Errorf("COMMAND COUNT = %d", n)
	}
	infos, err := c.Command(ctx).Result()
	if err != nil || infos["get"] == nil || infos["get"].Arity != 2 || !infos["get"].ReadOnly {
		t.Errorf("COMMAND get = %+v, %v", infos["get"], err)
	}
	if err := c.Do(ctx, "CLIENT", "SETNAME", "tester").Err(); err != nil {
		t.Fatal(err)
	}
	if name, _ := c.ClientGetName(ctx).Result(); name != "tester" {
		t.Errorf("CLIENT GETNAME = %q", name)
	}
	if list, _ := c.ClientList(ctx).Result(); !strings.Contains(list, "name=tester") || !strings.Contains(list, "lib-name=go-redis") {
		t.Errorf("CLIENT LIST = %q", list)
	}
	if n, err := c.Do(ctx, "WAIT", "1", "0").Int64(); err != nil || n != 0 {
		t.Errorf("WAIT = %d, %v; want 0 replicas", n, err)
	}
}

// MULTI/EXEC is one unit on the owner: replies in order, a run-time
// failure alone, a refusal while queueing aborts, and the limits take all
// of it or none. MSETNX and MSET are units too.
func TestTransactions(t *testing.T) {
	f := newFront(t, frontOpts{rules: actor.Rules{MaxMemory: 4096}})
	c := f.client(nil)
	ctx := context.Background()
	c.Set(ctx, "s", "text", 0)

	cmds, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "a", "1", 0)
		p.Incr(ctx, "a")
		p.Incr(ctx, "s") // fails alone, at run time
		p.Get(ctx, "a")
		return nil
	})
	if len(cmds) != 4 || err == nil || err.Error() != "ERR value is not an integer or out of range" {
		t.Fatalf("TxPipelined = %v, %v", cmds, err)
	}
	if v := cmds[1].(*redis.IntCmd).Val(); v != 2 {
		t.Errorf("INCR in EXEC = %d; want 2", v)
	}
	if v := cmds[3].(*redis.StringCmd).Val(); v != "2" {
		t.Errorf("GET in EXEC = %q; want 2", v)
	}

	// Command by command, as redis-cli sends them, over several batches.
	conn := c.Conn()
	defer conn.Close()
	for _, step := range []struct {
		args []any
		want string
	}{
		{[]any{"MULTI"}, "OK"},
		{[]any{"SET", "b", "1"}, "QUEUED"},
		{[]any{"MULTI"}, "ERR MULTI calls can not be nested"},
		{[]any{"INCRBY", "b", "41"}, "QUEUED"},
		{[]any{"EXEC"}, "[OK 42]"},
		{[]any{"MULTI"}, "OK"},
		{[]any{"SET", "c", "1"}, "QUEUED"},
		{[]any{"SET", "c", "1", "BOGUS"}, "ERR syntax error"},
		{[]any{"NOSUCH"}, "ERR unknown command 'NOSUCH', with args beginning with: "},
		{[]any{"EXEC"}, "EXECABORT Transaction discarded because of previous errors."},
		{[]any{"EXISTS", "c"}, "0"},
		{[]any{"MULTI"}, "OK"},
		{[]any{"SET", "d", "1"}, "QUEUED"},
		{[]any{"WATCH", "d"}, "ERR WATCH inside MULTI is not allowed"},
		{[]any{"DISCARD"}, "OK"},
		{[]any{"EXISTS", "d"}, "0"},
		// The memory limit refuses the whole unit: neither key is set.
		{[]any{"MULTI"}, "OK"},
		{[]any{"SET", "e", "1"}, "QUEUED"},
		{[]any{"SET", "big", strings.Repeat("v", 8192)}, "QUEUED"},
		{[]any{"EXEC"}, "OOM command not allowed when used memory > 'maxmemory'."},
		{[]any{"EXISTS", "e", "big"}, "0"},
		{[]any{"MSET", "e", "1", "big", strings.Repeat("v", 8192)}, "OOM command not allowed when used memory > 'maxmemory'."},
		{[]any{"EXISTS", "e", "big"}, "0"},
		{[]any{"MSETNX", "e", "1", "b", "2"}, "0"},
		{[]any{"EXISTS", "e"}, "0"},
		{[]any{"MSETNX", "e", "1", "f", "2"}, "1"},
		{[]any{"MGET", "e", "f", "b"}, "[1 2 42]"},
	} {
		v, err := conn.Do(ctx, step.args...).Result()
		got := fmt.Sprint(v)
		if err != nil {
			got = err.Error()
		}
		if got != step.want {
			t.Errorf("%v = %s; want %s", step.args, got, step.want)
		}
	}
}

// FLUSHDB needs the admin role, removes every key, and the removals are
// records: a restart from the log does not bring them back (the log is
// the actor's business, tested there; here, the keys are gone).
func TestFlush(t *testing.T) {
	f := newFront(t, frontOpts{})
	c := f.client(nil)
	ctx := context.Background()
	for i := range 100 {
		c.Set(ctx, fmt.Sprint("k", i), "v", time.Duration(i%2)*time.Hour)
	}
	if err := c.FlushDB(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if n, _ := c.DBSize(ctx).Result(); n != 0 {
		t.Errorf("DBSIZE after FLUSHDB = %d", n)
	}
	c.Set(ctx, "x", "1", 0)
	if err := c.FlushAllAsync(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if n, _ := c.Exists(ctx, "x").Result(); n != 0 {
		t.Errorf("x after FLUSHALL ASYNC exists")
	}
}
