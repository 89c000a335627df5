package rpc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"golang.org/x/net/netutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"

	"kvstore/actor"
	kvstorepb "kvstore/proto"
)

// Tests of clients that misbehave on purpose: raw HTTP/2 framers that
// never read, open streams without end or send huge header lists, and
// connections that never authenticate.

// hangGuard bounds how long a test waits for an event the server must
// cause at once; it is no timing assertion: on correct code the event
// comes long before, on broken code it never comes.
const hangGuard = 30 * time.Second

// limitServer is a server with the given transport options on a loopback
// port, with a client connection to it.
type limitServer struct {
	addr   string
	client kvstorepb.KVStoreClient
	health healthpb.HealthClient
	clock  *clock.Mock
}

func startLimitServer(tb testing.TB, sopts ServerOptions, opts Options, lisWrap func(net.Listener) net.Listener) *limitServer {
	tb.Helper()
	mock := clock.NewMock()
	a := actor.New(actor.Config{ExpireInterval: -1})
	opts.Clock = mock
	srv := NewServer(NewService(a, opts), sopts)
	srv.SetServing()
	tb.Cleanup(a.Stop)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := lis.Addr().String()
	if lisWrap != nil {
		lis = lisWrap(lis)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		conn.Close()
		srv.Stop()
		<-served
	})
	return &limitServer{addr: addr, client: kvstorepb.NewKVStoreClient(conn), health: healthpb.NewHealthClient(conn), clock: mock}
}

// h2Event is one frame from the server, summarised (a framer's frames
// are only valid until its next read).
type h2Event struct {
	typ      http2.FrameType
	stream   uint32
	flags    http2.Flags
	code     http2.ErrCode
	dataLen  int
	fields   []hpack.HeaderField
	settings map[http2.SettingID]uint32
	err      error // the read failed: the connection is gone
}

// rawH2 is an HTTP/2 client made of a framer: it sends what the test
// says and nothing else (no WINDOW_UPDATE unless told).
type rawH2 struct {
	tb     testing.TB
	conn   net.Conn
	fr     *http2.Framer
	hbuf   bytes.Buffer
	henc   *hpack.Encoder
	events chan h2Event
	// settings is the server's first SETTINGS frame.
	settings map[http2.SettingID]uint32
}

// dialH2 connects, sends the preface and SETTINGS, and reads the
// server's SETTINGS, so the server has accepted the connection.
func dialH2(tb testing.TB, addr string, settings ...http2.Setting) *rawH2 {
	tb.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	c := &rawH2{tb: tb, conn: conn, fr: http2.NewFramer(conn, conn), events: make(chan h2Event, 1024)}
	c.henc = hpack.NewEncoder(&c.hbuf)
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.fr.MaxHeaderListSize = 1 << 20
	done := make(chan struct{})
	tb.Cleanup(func() {
		conn.Close()
		<-done
	})
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		tb.Fatal(err)
	}
	if err := c.fr.WriteSettings(settings...); err != nil {
		tb.Fatal(err)
	}
	go c.read(done)
	ev := c.next()
	if ev.typ != http2.FrameSettings {
		tb.Fatalf("first frame from the server: %v; want SETTINGS", ev.typ)
	}
	c.settings = ev.settings
	if err := c.fr.WriteSettingsAck(); err != nil {
		tb.Fatal(err)
	}
	return c
}

func (c *rawH2) read(done chan struct{}) {
	defer close(done)
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			c.events <- h2Event{err: err}
			return
		}
		ev := h2Event{typ: f.Header().Type, stream: f.Header().StreamID, flags: f.Header().Flags}
		switch f := f.(type) {
		case *http2.DataFrame:
			ev.dataLen = len(f.Data())
		case *http2.MetaHeadersFrame:
			ev.fields = f.Fields
		case *http2.RSTStreamFrame:
			ev.code = f.ErrCode
		case *http2.GoAwayFrame:
			ev.code = f.ErrCode
		case *http2.SettingsFrame:
			if f.IsAck() {
				continue
			}
			ev.settings = map[http2.SettingID]uint32{}
			f.ForeachSetting(func(s http2.Setting) error {
				ev.settings[s.ID] = s.Val
				return nil
			})
		}
		select {
		case c.events <- ev:
		default:
			// The test stopped reading; so do we, as a client that does
			// not read would.
		}
	}
}

// next returns the next frame from the server.
func (c *rawH2) next() h2Event {
	c.tb.Helper()
	select {
	case ev := <-c.events:
		return ev
	case <-time.After(hangGuard):
		c.tb.Fatal("no frame from the server")
		return h2Event{}
	}
}

// headers sends one HEADERS frame for a call of method with the extra
// fields given.
func (c *rawH2) headers(stream uint32, method string, endStream bool, extra ...hpack.HeaderField) {
	c.tb.Helper()
	c.hbuf.Reset()
	fields := append([]hpack.HeaderField{
		{Name: ":method", Value: "POST"},
		{Name: ":scheme", Value: "http"},
		{Name: ":path", Value: method},
		{Name: ":authority", Value: "kvstore"},
		{Name: "content-type", Value: "application/grpc"},
		{Name: "te", Value: "trailers"},
	}, extra...)
	for _, f := range fields {
		if err := c.henc.WriteField(f); err != nil {
			c.tb.Fatal(err)
		}
	}
	if err := c.fr.WriteHeaders(http2.HeadersFrameParam{
		StreamID: stream, BlockFragment: c.hbuf.Bytes(), EndHeaders: true, EndStream: endStream,
	}); err != nil {
		c.tb.Fatal(err)
	}
}

// get sends a whole Get call for key on stream.
func (c *rawH2) get(stream uint32, key string) {
	c.tb.Helper()
	c.headers(stream, kvstorepb.KVStore_Get_FullMethodName, false)
	msg, err := proto.Marshal(&kvstorepb.GetRequest{Key: key})
	if err != nil {
		c.tb.Fatal(err)
	}
	frame := make([]byte, 5, 5+len(msg))
	binary.BigEndian.PutUint32(frame[1:], uint32(len(msg)))
	if err := c.fr.WriteData(stream, true, append(frame, msg...)); err != nil {
		c.tb.Fatal(err)
	}
}

// untilPingAck returns the frames the server sent before it answered a
// PING: the server reads frames in order and queues its answers (RST_STREAM
// of refused streams included) before the PING's, so they are all there.
func (c *rawH2) untilPingAck() []h2Event {
	c.tb.Helper()
	data := [8]byte{'b', 'a', 'r', 'r', 'i', 'e', 'r'}
	if err := c.fr.WritePing(false, data); err != nil {
		c.tb.Fatal(err)
	}
	var evs []h2Event
	for {
		ev := c.next()
		if ev.err != nil {
			c.tb.Fatalf("connection lost before the PING ACK: %v", ev.err)
		}
		if ev.typ == http2.FramePing && ev.flags.Has(http2.FlagPingAck) {
			return evs
		}
		evs = append(evs, ev)
	}
}

func TestGRPCAdvertisesTransportLimits(t *testing.T) {
	ts := startLimitServer(t, ServerOptions{}, Options{}, nil)
	c := dialH2(t, ts.addr)
	for id, want := range map[http2.SettingID]uint32{
		http2.SettingMaxConcurrentStreams: maxStreams,
		http2.SettingMaxHeaderListSize:    maxHeaderListBytes,
	} {
		if got, ok := c.settings[id]; !ok || got != want {
			t.Errorf("server SETTINGS %v = %d (sent: %v); want %d", id, got, ok, want)
		}
	}
	if maxStreams > 100 || maxHeaderListBytes > 16<<10 {
		t.Errorf("limits %d streams, %d header bytes: over what README promises", maxStreams, maxHeaderListBytes)
	}
}

// A client that opens streams and never sends their requests (no token
// either) holds a header list and a goroutine per stream: past
// maxStreams, the server refuses new streams.
func TestGRPCRefusesStreamsPastLimit(t *testing.T) {
	ts := startLimitServer(t, ServerOptions{}, Options{}, nil)
	c := dialH2(t, ts.addr)
	last := uint32(2*maxStreams + 1) // the stream one past the limit
	for id := uint32(1); id <= last; id += 2 {
		c.headers(id, kvstorepb.KVStore_Get_FullMethodName, false)
	}
	var refused []uint32
	for _, ev := range c.untilPingAck() {
		if ev.typ == http2.FrameRSTStream {
			if ev.code != http2.ErrCodeRefusedStream {
				t.Errorf("stream %d reset with %v; want REFUSED_STREAM", ev.stream, ev.code)
			}
			refused = append(refused, ev.stream)
		}
	}
	if len(refused) != 1 || refused[0] != last {
		t.Fatalf("streams refused: %v; want only %d, the one past %d", refused, last, maxStreams)
	}
}

// HPACK lets a client name a 4000-byte header again in one byte: a HEADERS
// block of a few KB decodes to megabytes. Past maxHeaderListBytes the
// stream is reset, before any handler (or token check) sees it.
func TestGRPCRefusesLargeHeaderList(t *testing.T) {
	ts := startLimitServer(t, ServerOptions{}, Options{}, nil)
	c := dialH2(t, ts.addr)
	pad := hpack.HeaderField{Name: "x-pad", Value: strings.Repeat("p", 4000)}
	extra := make([]hpack.HeaderField, 1000) // 4 MB decoded, about 5 KB sent
	for i := range extra {
		extra[i] = pad
	}
	c.headers(1, kvstorepb.KVStore_Get_FullMethodName, true, extra...)
	if c.hbuf.Len() > 8<<10 {
		t.Fatalf("HEADERS block is %d bytes: the repeats were not indexed", c.hbuf.Len())
	}
	evs := c.untilPingAck()
	if len(evs) != 1 || evs[0].typ != http2.FrameRSTStream || evs[0].stream != 1 {
		t.Fatalf("server answered %+v; want RST_STREAM on stream 1", evs)
	}
	// The connection goes on: a call of normal size is served.
	c.get(3, "k")
	for {
		ev := c.next()
		if ev.err != nil {
			t.Fatalf("connection lost: %v", ev.err)
		}
		if ev.stream == 3 && ev.flags.Has(http2.FlagHeadersEndStream) {
			if got := grpcStatus(ev.fields); got != "0" {
				t.Fatalf("Get after the reset: grpc-status %q; want 0", got)
			}
			return
		}
	}
}

func grpcStatus(fields []hpack.HeaderField) string {
	for _, f := range fields {
		if f.Name == "grpc-status" {
			return f.Value
		}
	}
	return ""
}

// budgetServer serves a 40 KiB value under key "big", with the response
// budget given, and reports each response that starts waiting for it.
func budgetServer(t *testing.T, connLimit, limit int64) (*limitServer, chan struct{}, int) {
	t.Helper()
	waits := make(chan struct{}, 64)
	ts := startLimitServer(t, ServerOptions{
		MaxConnResponseBytes: connLimit,
		MaxResponseBytes:     limit,
		onResponseWait:       func() { waits <- struct{}{} },
	}, Options{}, nil)
	value := strings.Repeat("v", 40<<10)
	if _, err := ts.client.Set(context.Background(), &kvstorepb.SetRequest{Key: "big", Value: value}); err != nil {
		t.Fatal(err)
	}
	return ts, waits, proto.Size(&kvstorepb.GetResponse{Found: true, Value: value})
}

// heldResponses reads frames from c until it has seen want response
// HEADERS and waits responses waiting for the budget, failing at once if
// the server starts more responses than want, or sends any DATA (the
// client's window is 0). It returns the streams whose responses started.
func heldResponses(t *testing.T, c *rawH2, waits chan struct{}, want, waiting int) map[uint32]bool {
	t.Helper()
	started := map[uint32]bool{}
	waited := 0
	for len(started) < want || waited < waiting {
		select {
		case <-waits:
			waited++
		case ev := <-c.events:
			switch {
			case ev.err != nil:
				t.Fatalf("connection lost: %v", ev.err)
			case ev.typ == http2.FrameData:
				t.Fatalf("%d bytes of DATA on stream %d past a window of 0", ev.dataLen, ev.stream)
			case ev.typ == http2.FrameHeaders:
				if ev.flags.Has(http2.FlagHeadersEndStream) {
					t.Fatalf("stream %d ended: %v", ev.stream, ev.fields)
				}
				started[ev.stream] = true
				if len(started) > want {
					t.Fatalf("%d responses queued for a client that does not read; the budget allows %d", len(started), want)
				}
			}
		case <-time.After(hangGuard):
			t.Fatalf("%d responses started, %d waiting; want %d and %d", len(started), waited, want, waiting)
		}
	}
	return started
}

// A client that sends Gets and never reads (window 0) gets responses
// queued only up to its connection's budget; the rest wait. A reset
// stream gives its bytes back, and so does reading.
func TestGRPCResponseBudgetPerConnection(t *testing.T) {
	ts, waits, size := budgetServer(t, 100<<10, 1<<30)
	if 2*size > 100<<10 || 3*size <= 100<<10 {
		t.Fatalf("a response of %d bytes: the test wants two to fit 100 KiB, not three", size)
	}
	c := dialH2(t, ts.addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	for _, id := range []uint32{1, 3, 5, 7} {
		c.get(id, "big")
	}
	started := heldResponses(t, c, waits, 2, 2)

	// Resetting a queued response gives its bytes back: one more starts.
	for id := range started {
		if err := c.fr.WriteRSTStream(id, http2.ErrCodeCancel); err != nil {
			t.Fatal(err)
		}
		delete(started, id)
		break
	}
	more := heldResponses(t, c, make(chan struct{}), 1, 0)

	// Reading (a window for every stream) lets everything out: the last
	// Get waiting gets its turn, and every response ends OK.
	if err := c.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	if err := c.fr.WriteWindowUpdate(0, 1<<30); err != nil {
		t.Fatal(err)
	}
	ended := map[uint32]string{}
	for len(ended) < 3 {
		ev := c.next()
		if ev.err != nil {
			t.Fatalf("connection lost: %v", ev.err)
		}
		if ev.typ == http2.FrameHeaders && ev.flags.Has(http2.FlagHeadersEndStream) {
			ended[ev.stream] = grpcStatus(ev.fields)
		}
	}
	for id, st := range ended {
		if st != "0" {
			t.Errorf("stream %d ended with grpc-status %q; want 0", id, st)
		}
	}
	for id := range more {
		if _, ok := ended[id]; !ok {
			t.Errorf("stream %d started after the reset but did not end", id)
		}
	}
}

// The server-wide budget holds across connections, and a connection that
// goes away gives back everything it held, even responses grpc had queued
// and never wrote.
func TestGRPCResponseBudgetServerWide(t *testing.T) {
	ts, waits, _ := budgetServer(t, 1<<30, 100<<10)
	a := dialH2(t, ts.addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	for _, id := range []uint32{1, 3, 5} {
		a.get(id, "big")
	}
	heldResponses(t, a, waits, 2, 1)

	b := dialH2(t, ts.addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	b.get(1, "big")
	heldResponses(t, b, waits, 0, 1)

	a.conn.Close()
	heldResponses(t, b, make(chan struct{}), 1, 0)
}

// A client that reads gets every response, however far past the budget
// the responses it asked for go together.
func TestGRPCResponseBudgetReleasedOnRead(t *testing.T) {
	ts, _, _ := budgetServer(t, 100<<10, 100<<10)
	errc := make(chan error, 20)
	for range cap(errc) {
		go func() {
			resp, err := ts.client.Get(context.Background(), &kvstorepb.GetRequest{Key: "big"})
			if err == nil && len(resp.GetValue()) != 40<<10 {
				err = errors.New("wrong value")
			}
			errc <- err
		}()
	}
	for range cap(errc) {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
}

// Health Watch needs no token; the number of Watch streams is bounded in
// all.
func TestHealthWatchLimit(t *testing.T) {
	ts := startLimitServer(t, ServerOptions{MaxHealthWatchers: 2}, Options{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for range 2 {
		w, err := ts.health.Watch(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if resp, err := w.Recv(); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("Watch: %v, %v", resp, err)
		}
	}
	w, err := ts.health.Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.Recv()
	wantCode(t, err, codes.ResourceExhausted, "too many health Watch streams (2)")
	if _, err := ts.health.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("Check past the Watch limit: %v", err)
	}
}

// With token auth, a connection on which no call presents a valid token
// is closed after UnauthenticatedTimeout and gives back its
// --max-connections slot; one that authenticated stays.
func TestUnauthenticatedConnectionClosed(t *testing.T) {
	f := newAuthFixture(t)
	ts := startLimitServer(t, ServerOptions{
		Unary:                  []grpc.UnaryServerInterceptor{f.auth.UnaryInterceptor()},
		Stream:                 []grpc.StreamServerInterceptor{f.auth.StreamInterceptor()},
		UnauthenticatedTimeout: time.Minute,
	}, Options{}, func(l net.Listener) net.Listener { return netutil.LimitListener(l, 1) })

	// The only slot: a connection that calls without a token, and health.
	idle := dialH2(t, ts.addr)
	idle.get(1, "k")
	idle.headers(3, "/grpc.health.v1.Health/Check", false)
	ts.clock.Add(time.Minute)
	for {
		ev := idle.next()
		if ev.err != nil {
			break // closed
		}
	}

	ctx := bearer(context.Background(), f.tokens[RoleWrite])
	if _, err := ts.client.Set(ctx, &kvstorepb.SetRequest{Key: "k", Value: "v"}); err != nil {
		t.Fatal(err)
	}
	ts.clock.Add(time.Minute)
	if _, err := ts.client.Set(ctx, &kvstorepb.SetRequest{Key: "k", Value: "v2"}); err != nil {
		t.Fatalf("authenticated connection after the timeout: %v", err)
	}
}

// An HTTP/1 request that announces a body and never sends it is answered
// at once when the answer needs no body (a refusal, a route that reads
// none), and its connection closed: net/http would otherwise wait for the
// body before it sends the answer.
func TestHTTPAnswersWithoutWaitingForBody(t *testing.T) {
	f := newAuthFixture(t)
	ts := startAuthHTTP(t, f.auth, Options{}, false)
	addr := strings.TrimPrefix(ts.url, "http://")
	tests := []struct {
		name, method, path, authz, contentType string
		status                                 int
	}{
		{"no token", "PUT", "/v1/keys/x", "", "application/json", http.StatusUnauthorized},
		{"bad token", "PUT", "/v1/keys/x", "Bearer kvs_bad", "application/json", http.StatusUnauthorized},
		{"read token", "PUT", "/v1/keys/x", "Bearer " + f.tokens[RoleRead], "application/json", http.StatusForbidden},
		{"content type", "PUT", "/v1/keys/x", "Bearer " + f.tokens[RoleWrite], "text/plain", http.StatusUnsupportedMediaType},
		{"bad key", "PUT", "/v1/keys/%ff", "Bearer " + f.tokens[RoleWrite], "application/json", http.StatusBadRequest},
		{"healthz", "GET", "/healthz", "", "", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(hangGuard))
			req := tt.method + " " + tt.path + " HTTP/1.1\r\nHost: kvstore\r\nContent-Length: 1000\r\n"
			if tt.authz != "" {
				req += "Authorization: " + tt.authz + "\r\n"
			}
			if tt.contentType != "" {
				req += "Content-Type: " + tt.contentType + "\r\n"
			}
			if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("no answer before the body: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status || !resp.Close {
				t.Fatalf("got %d, Connection: close %v; want %d and close", resp.StatusCode, resp.Close, tt.status)
			}
		})
	}
}

// A PUT whose body is read to its end keeps its connection.
func TestHTTPKeepsConnectionAfterBody(t *testing.T) {
	f := newAuthFixture(t)
	ts := startAuthHTTP(t, f.auth, Options{}, false)
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(hangGuard))
	br := bufio.NewReader(conn)
	body := `{"value": "v"}`
	for range 2 {
		req := "PUT /v1/keys/x HTTP/1.1\r\nHost: kvstore\r\nContent-Type: application/json\r\n" +
			"Authorization: Bearer " + f.tokens[RoleWrite] + "\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
		if _, err := io.WriteString(conn, req); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Close {
			t.Fatalf("got %d, close %v; want 200 and the connection kept", resp.StatusCode, resp.Close)
		}
	}
}
