package redisfront

import (
	"bufio"
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// hangGuard fails a test that waits on something that should have
// happened long before.
const hangGuard = 30 * time.Second

// A client that sends GETs of a large value and never reads its replies
// is not read from once its replies back up: the server holds one batch
// of its commands, not everything it sends, and none of the values are
// copied per reply. Other connections are served meanwhile, and after
// WriteTimeout it is disconnected and gives back its connection slot.
func TestNeverReadingClient(t *testing.T) {
	// Socket deadlines run on the real clock: the hostile connection goes
	// between 50 and 100 ms after its first reply backs up.
	f := newFront(t, frontOpts{writeTimeout: 100 * time.Millisecond, maxConns: 2})
	ctx := context.Background()
	c := f.client(&redis.Options{PoolSize: 1})
	big := strings.Repeat("v", 512<<10)
	if err := c.Set(ctx, "big", big, 0).Err(); err != nil {
		t.Fatal(err)
	}

	nc, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.(*net.TCPConn).SetReadBuffer(4 << 10)
	chunk := []byte(strings.Repeat("GET big\r\n", 1000))
	sent := make(chan int, 1)
	go func() {
		n := 0
		for {
			if _, err := nc.Write(chunk); err != nil {
				sent <- n
				return
			}
			n += 1000
		}
	}()

	// The go-redis connection (the other slot) is served while the
	// hostile one is open.
	if v, err := c.Get(ctx, "big").Result(); err != nil || len(v) != len(big) {
		t.Fatalf("GET on another connection: %d bytes, %v", len(v), err)
	}
	var n int
	select {
	case n = <-sent:
	case <-time.After(hangGuard):
		t.Fatal("the connection that never reads was not disconnected")
	}
	processed := infoField(t, c, "stats", "total_commands_processed")
	// The hostile sent n commands (those that reached the kernel's
	// buffers), the server ran at most one batch of them.
	if processed > 2*maxPipeline+10 || processed >= n {
		t.Errorf("the server processed %d commands of the %d sent by a client that never reads; want at most one batch (%d)",
			processed, n, maxPipeline)
	}

	// Its slot is free: a new connection is accepted and served.
	nc2, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc2.Close()
	if _, err := nc2.Write([]byte("PING\r\n")); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(nc2).ReadString('\n')
	if err != nil || line != "+PONG\r\n" {
		t.Fatalf("PING on a new connection = %q, %v", line, err)
	}
}

// infoField is one integer field of INFO section.
func infoField(t *testing.T, c *redis.Client, section, field string) int {
	t.Helper()
	info, err := c.Info(context.Background(), section).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("INFO %s: %s", field, l)
			}
			return n
		}
	}
	t.Fatalf("INFO %s has no %s", section, field)
	return 0
}

// MSET of many keys, in one command, is applied as one unit and read
// back whole; an MSET past the front's bound on one command's bytes is a
// protocol error and sets nothing.
func TestHugeMSET(t *testing.T) {
	f := newFront(t, frontOpts{})
	ctx := context.Background()
	c := f.client(nil)
	const keys = 100_000
	pairs := make([]any, 0, 2*keys)
	names := make([]string, keys)
	for i := range keys {
		names[i] = "k" + strconv.Itoa(i)
		pairs = append(pairs, names[i], "v"+strconv.Itoa(i))
	}
	batches := f.batches.Load()
	if err := c.MSet(ctx, pairs...).Err(); err != nil {
		t.Fatal(err)
	}
	if got := f.batches.Load() - batches; got != 1 {
		t.Errorf("MSET of %d keys took %d actor batches; want 1", keys, got)
	}
	if n, err := c.DBSize(ctx).Result(); err != nil || n != keys {
		t.Fatalf("DBSIZE = %d, %v; want %d", n, err, keys)
	}
	vals, err := c.MGet(ctx, names...).Result()
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range vals {
		if v != "v"+strconv.Itoa(i) {
			t.Fatalf("MGET[%d] = %v", i, v)
		}
	}

	// Past MaxCommand (4 × the 1 MiB bulk bound here): refused whole.
	v := strings.Repeat("x", 1<<20)
	over := []any{}
	for i := range 5 {
		over = append(over, "over"+strconv.Itoa(i), v)
	}
	err = c.MSet(ctx, over...).Err()
	if err == nil || !strings.Contains(err.Error(), "Protocol error") {
		t.Fatalf("MSET of 5 MiB: %v; want a protocol error", err)
	}
	// The protocol error closed that connection.
	if n, err := f.client(nil).Exists(ctx, "over0").Result(); err != nil || n != 0 {
		t.Errorf("EXISTS over0 = %d, %v after the refused MSET; want 0", n, err)
	}
}
