package rpc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"kvstore/actor"
	kvstorepb "kvstore/proto"
)

// authFixture is an auth file granting one token per role.
type authFixture struct {
	auth   *Auth
	path   string
	tokens map[Role]string
	lines  map[Role]string
}

// writeFile replaces the auth file's content.
func (f *authFixture) writeFile(tb testing.TB, content string) {
	tb.Helper()
	if err := os.WriteFile(f.path, []byte(content), 0o600); err != nil {
		tb.Fatal(err)
	}
}

// newAuthFixture makes a token per role with NewToken and loads the lines
// it printed, so every test also checks that they round-trip.
func newAuthFixture(tb testing.TB) *authFixture {
	tb.Helper()
	f := &authFixture{path: filepath.Join(tb.TempDir(), "tokens"), tokens: map[Role]string{}, lines: map[Role]string{}}
	content := "# kvstore tokens\n\n"
	for _, r := range []Role{RoleRead, RoleWrite, RoleAdmin} {
		tok, line, err := NewToken(r, "test-"+r.String())
		if err != nil {
			tb.Fatal(err)
		}
		f.tokens[r], f.lines[r] = tok, line
		content += line + "\n"
	}
	f.writeFile(tb, content)
	a, err := LoadAuth(f.path)
	if err != nil {
		tb.Fatal(err)
	}
	f.auth = a
	return f
}

type authGRPC struct {
	client kvstorepb.KVStoreClient
	health healthpb.HealthClient
}

// startAuthServer serves a fresh actor through NewServer with a's
// interceptor on a loopback port and stops both at cleanup.
func startAuthServer(tb testing.TB, a *Auth, opts Options) *authGRPC {
	tb.Helper()
	act := actor.New(actor.Config{ExpireInterval: -1})
	srv := NewServer(NewService(act, opts), ServerOptions{Unary: []grpc.UnaryServerInterceptor{a.UnaryInterceptor()}, Stream: []grpc.StreamServerInterceptor{a.StreamInterceptor()}})
	srv.SetServing()
	tb.Cleanup(act.Stop)
	conn := serveLoopback(tb, srv.Serve, srv.Stop)
	return &authGRPC{client: kvstorepb.NewKVStoreClient(conn), health: healthpb.NewHealthClient(conn)}
}

// startAuthHTTP serves NewHTTPHandler wrapped with a.HTTP on a loopback
// port. /metrics answers "metrics" and pprof is on.
func startAuthHTTP(tb testing.TB, a *Auth, opts Options, metricsOpen bool) *httpTestServer {
	tb.Helper()
	act := actor.New(actor.Config{ExpireInterval: -1})
	svc := NewService(act, opts)
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "metrics\n") })
	h := NewHTTPHandler(svc, HTTPOptions{Pprof: true, Metrics: metrics})
	srv := httptest.NewServer(a.HTTP(h, metricsOpen))
	tb.Cleanup(func() {
		srv.Close()
		act.Stop()
	})
	return &httpTestServer{url: srv.URL, client: srv.Client(), svc: svc}
}

// doAuth sends one request with the authorization header values given.
func (ts *httpTestServer) doAuth(tb testing.TB, method, path string, authz ...string) httpResponse {
	tb.Helper()
	var body io.Reader
	if method == http.MethodPut {
		body = strings.NewReader(`{"value": "v"}`)
	}
	req, err := http.NewRequest(method, ts.url+path, body)
	if err != nil {
		tb.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, v := range authz {
		req.Header.Add("Authorization", v)
	}
	return ts.send(tb, req)
}

func bearer(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

func TestAuthGRPCRoles(t *testing.T) {
	f := newAuthFixture(t)
	ts := startAuthServer(t, f.auth, Options{})
	calls := map[string]func(ctx context.Context) error{
		"Get": func(ctx context.Context) error {
			_, err := ts.client.Get(ctx, &kvstorepb.GetRequest{Key: "k"})
			return err
		},
		"Set": func(ctx context.Context) error {
			_, err := ts.client.Set(ctx, &kvstorepb.SetRequest{Key: "k", Value: "v"})
			return err
		},
		"Delete": func(ctx context.Context) error {
			_, err := ts.client.Delete(ctx, &kvstorepb.DeleteRequest{Key: "k"})
			return err
		},
		"Health": func(ctx context.Context) error {
			_, err := ts.health.Check(ctx, &healthpb.HealthCheckRequest{})
			return err
		},
	}
	U, P, OK := codes.Unauthenticated, codes.PermissionDenied, codes.OK
	tests := []struct {
		who  string
		ctx  func(context.Context) context.Context
		want map[string]codes.Code
	}{
		{"no token", func(ctx context.Context) context.Context { return ctx },
			map[string]codes.Code{"Get": U, "Set": U, "Delete": U, "Health": OK}},
		{"unknown token", func(ctx context.Context) context.Context { return bearer(ctx, "kvs_not-a-known-token") },
			map[string]codes.Code{"Get": U, "Set": U, "Delete": U, "Health": OK}},
		{"read", func(ctx context.Context) context.Context { return bearer(ctx, f.tokens[RoleRead]) },
			map[string]codes.Code{"Get": OK, "Set": P, "Delete": P, "Health": OK}},
		{"write", func(ctx context.Context) context.Context { return bearer(ctx, f.tokens[RoleWrite]) },
			map[string]codes.Code{"Get": OK, "Set": OK, "Delete": OK, "Health": OK}},
		{"admin", func(ctx context.Context) context.Context { return bearer(ctx, f.tokens[RoleAdmin]) },
			map[string]codes.Code{"Get": OK, "Set": OK, "Delete": OK, "Health": OK}},
	}
	for _, tt := range tests {
		for call, want := range tt.want {
			err := calls[call](tt.ctx(context.Background()))
			if got := status.Code(err); got != want {
				t.Errorf("%s %s: %v; want %v", tt.who, call, err, want)
			}
		}
	}
	err := calls["Set"](bearer(context.Background(), f.tokens[RoleRead]))
	wantCode(t, err, codes.PermissionDenied, "a read token may not call /kvstore.v1.KVStore/Set: it needs the write role")
}

// TestAuthGRPCBadCredentials covers every malformed authorization; none
// of the answers may quote what was sent.
func TestAuthGRPCBadCredentials(t *testing.T) {
	f := newAuthFixture(t)
	ts := startAuthServer(t, f.auth, Options{})
	tok := f.tokens[RoleAdmin]
	tests := []struct {
		name  string
		authz []string
		msg   string
	}{
		{"missing", nil, "missing credentials"},
		{"garbage", []string{"Bearer kvs_garbage"}, "invalid or revoked token"},
		{"hash instead of token", []string{"Bearer " + strings.Fields(f.lines[RoleAdmin])[1]}, "invalid or revoked token"},
		{"scheme only", []string{"Bearer"}, "bearer token is empty"},
		{"no scheme", []string{tok}, "Bearer scheme"},
		{"basic", []string{"Basic " + tok}, "Bearer scheme"},
		{"two tokens", []string{"Bearer " + tok + " " + tok}, "malformed bearer token"},
		{"two values", []string{"Bearer " + tok, "Bearer " + tok}, "more than one authorization value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			for _, v := range tt.authz {
				ctx = metadata.AppendToOutgoingContext(ctx, "authorization", v)
			}
			_, err := ts.client.Get(ctx, &kvstorepb.GetRequest{Key: "k"})
			wantCode(t, err, codes.Unauthenticated, tt.msg)
			if strings.Contains(err.Error(), tok) || strings.Contains(err.Error(), "garbage") {
				t.Fatalf("error %q quotes the credentials", err)
			}
		})
	}
	// The scheme is case-insensitive.
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "bearer "+tok)
	if _, err := ts.client.Get(ctx, &kvstorepb.GetRequest{Key: "k"}); err != nil {
		t.Fatalf("lower-case bearer: %v", err)
	}
}

// TestAuthInterceptorUnknownMethod: a method the table does not name
// (an admin RPC added later) needs admin.
func TestAuthInterceptorUnknownMethod(t *testing.T) {
	f := newAuthFixture(t)
	icpt := f.auth.UnaryInterceptor()
	handler := func(ctx context.Context, req any) (any, error) { return "ok", nil }
	info := &grpc.UnaryServerInfo{FullMethod: "/kvstore.v1.Admin/Compact"}
	for role, want := range map[Role]codes.Code{RoleRead: codes.PermissionDenied, RoleWrite: codes.PermissionDenied, RoleAdmin: codes.OK} {
		ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+f.tokens[role]))
		if _, err := icpt(ctx, nil, info, handler); status.Code(err) != want {
			t.Errorf("%v: %v; want %v", role, err, want)
		}
	}
	if _, err := icpt(context.Background(), nil, info, handler); status.Code(err) != codes.Unauthenticated {
		t.Errorf("no metadata: %v; want Unauthenticated", err)
	}
	// A nil *Auth is auth off.
	var off *Auth
	if resp, err := off.UnaryInterceptor()(context.Background(), nil, info, handler); err != nil || resp != "ok" {
		t.Errorf("nil Auth: %v, %v", resp, err)
	}
	if err := off.Reload(); err != nil {
		t.Errorf("nil Auth Reload: %v", err)
	}
}

// TestAuthStreams: reflection needs read, health Watch is open.
func TestAuthStreams(t *testing.T) {
	f := newAuthFixture(t)
	hs := health.NewServer()
	srv := grpc.NewServer(grpc.ChainStreamInterceptor(f.auth.StreamInterceptor()))
	healthpb.RegisterHealthServer(srv, hs)
	reflection.Register(srv)
	conn := serveLoopback(t, srv.Serve, func() {
		hs.Shutdown()
		srv.Stop()
	})
	listServices := func(ctx context.Context) error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
		if err != nil {
			return err
		}
		if err := stream.Send(&reflectionpb.ServerReflectionRequest{
			MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
		}); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		_, err = stream.Recv()
		return err
	}
	for ctx, want := range map[context.Context]codes.Code{
		context.Background():                              codes.Unauthenticated,
		bearer(context.Background(), "kvs_unknown"):       codes.Unauthenticated,
		bearer(context.Background(), f.tokens[RoleRead]):  codes.OK,
		bearer(context.Background(), f.tokens[RoleAdmin]): codes.OK,
	} {
		if err := listServices(ctx); status.Code(err) != want {
			t.Errorf("reflection: %v; want %v", err, want)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watch, err := healthpb.NewHealthClient(conn).Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := watch.Recv(); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health Watch without a token = %v, %v", resp, err)
	}
}

func TestAuthHTTPRoles(t *testing.T) {
	f := newAuthFixture(t)
	closed := startAuthHTTP(t, f.auth, Options{}, false)
	open := startAuthHTTP(t, f.auth, Options{}, true)
	routes := []struct{ method, path string }{
		{"GET", "/v1/keys/k"}, {"HEAD", "/v1/keys/k"}, {"PUT", "/v1/keys/k"}, {"DELETE", "/v1/keys/k"},
		{"POST", "/v1/keys/k"}, {"GET", "/v1/other"},
		{"GET", "/healthz"}, {"GET", "/readyz"}, {"GET", "/metrics"}, {"GET", "/debug/pprof/cmdline"},
	}
	// want[who] lists, per route above, the status on the closed-metrics
	// server. PUT then DELETE runs in order, so GET finds the key only
	// between them; it is deleted again by each role that may.
	want := map[string][]int{
		"none":    {401, 401, 401, 401, 401, 401, 200, 200, 401, 401},
		"unknown": {401, 401, 401, 401, 401, 401, 200, 200, 401, 401},
		"read":    {404, 404, 403, 403, 405, 404, 200, 200, 200, 403},
		"write":   {404, 404, 200, 200, 405, 404, 200, 200, 200, 403},
		"admin":   {404, 404, 200, 200, 405, 404, 200, 200, 200, 200},
	}
	authz := map[string][]string{
		"none":    nil,
		"unknown": {"Bearer kvs_unknown"},
		"read":    {"Bearer " + f.tokens[RoleRead]},
		"write":   {"Bearer " + f.tokens[RoleWrite]},
		"admin":   {"Bearer " + f.tokens[RoleAdmin]},
	}
	for _, who := range []string{"none", "unknown", "read", "write", "admin"} {
		for i, rt := range routes {
			r := closed.doAuth(t, rt.method, rt.path, authz[who]...)
			if r.status != want[who][i] {
				t.Errorf("%s %s %s = %d %q; want %d", who, rt.method, rt.path, r.status, r.body, want[who][i])
				continue
			}
			switch r.status {
			case 401:
				if rt.method != "HEAD" {
					r.wantError(t, 401, "UNAUTHENTICATED", "")
				}
				if ch := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, "Bearer ") {
					t.Errorf("%s %s %s: WWW-Authenticate %q", who, rt.method, rt.path, ch)
				}
			case 403:
				if rt.method != "HEAD" {
					r.wantError(t, 403, "PERMISSION_DENIED", "it needs the")
				}
				if ch := r.header.Get("WWW-Authenticate"); ch != "" {
					t.Errorf("%s %s %s: 403 with WWW-Authenticate %q", who, rt.method, rt.path, ch)
				}
			}
		}
	}
	closed.doAuth(t, "PUT", "/v1/keys/k", authz["read"]...).wantError(t, 403, "PERMISSION_DENIED",
		"a read token may not PUT /v1/keys/{key}: it needs the write role")
	if r := closed.doAuth(t, "GET", "/v1/keys/k"); r.header.Get("WWW-Authenticate") != `Bearer realm="kvstore"` {
		t.Errorf("no token: WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
	}
	if r := closed.doAuth(t, "GET", "/v1/keys/k", "Bearer nope"); r.header.Get("WWW-Authenticate") != `Bearer realm="kvstore", error="invalid_token"` {
		t.Errorf("bad token: WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
	}
	// With metrics open, only /metrics changes.
	if r := open.doAuth(t, "GET", "/metrics"); r.status != 200 || r.body != "metrics\n" {
		t.Errorf("open /metrics without a token = %d %q", r.status, r.body)
	}
	if r := open.doAuth(t, "GET", "/v1/keys/k"); r.status != 401 {
		t.Errorf("metrics open: GET key without a token = %d", r.status)
	}
	if r := open.doAuth(t, "GET", "/debug/pprof/cmdline", authz["write"]...); r.status != 403 {
		t.Errorf("metrics open: pprof as write = %d", r.status)
	}
	// A write token round trip: the key is really set.
	closed.doAuth(t, "PUT", "/v1/keys/k", authz["write"]...).want(t, 200, `{"success":true}`)
	closed.doAuth(t, "GET", "/v1/keys/k", authz["read"]...).want(t, 200, `{"found":true,"value":"v"}`)
}

// TestAuthHTTPPathSpellings: no spelling of a pprof path gets past with
// less than admin, and only the plain /healthz is open.
func TestAuthHTTPPathSpellings(t *testing.T) {
	f := newAuthFixture(t)
	ts := startAuthHTTP(t, f.auth, Options{}, true)
	read := "Bearer " + f.tokens[RoleRead]
	for _, p := range []string{"/debug/%70prof/cmdline", "//debug/pprof/cmdline", "/debug/pprof/../pprof/cmdline",
		"/v1/../debug/pprof/cmdline", "/debug", "/%64ebug/pprof/"} {
		if r := ts.doAuth(t, "GET", p, read); r.status != 403 {
			t.Errorf("GET %s as read = %d %q; want 403", p, r.status, r.body)
		}
	}
	for _, p := range []string{"/health%7A", "//healthz", "/healthz/", "/metrics/", "/%6Detrics"} {
		if r := ts.doAuth(t, "GET", p); r.status != 401 {
			t.Errorf("GET %s without a token = %d %q; want 401", p, r.status, r.body)
		}
	}
	// A nil *Auth leaves the handler as it is.
	h := http.NotFoundHandler()
	var off *Auth
	if got := off.HTTP(h, false); got == nil {
		t.Fatal("nil Auth: nil handler")
	}
}

// TestAuthAdminNeedsAdmin: the Admin service and /v1/admin/, in any
// spelling, need the admin role.
func TestAuthAdminNeedsAdmin(t *testing.T) {
	for _, m := range []string{"/kvstore.v1.Admin/Backup", "/kvstore.v1.Admin/Info", "/kvstore.v1.Admin/Snapshot",
		"/kvstore.v1.Admin/ClusterStatus", "/kvstore.v1.Admin/AddMember", "/kvstore.v1.Admin/RemoveMember", "/kvstore.v1.Admin/TransferLeader"} {
		if got := grpcRole(m); got != RoleAdmin {
			t.Errorf("%s needs %v; want admin", m, got)
		}
	}
	f := newAuthFixture(t)
	ts := startAuthHTTP(t, f.auth, Options{}, true)
	for _, role := range []Role{RoleRead, RoleWrite} {
		token := "Bearer " + f.tokens[role]
		for _, p := range []string{"GET /v1/admin/info", "GET /v1/admin/backup", "POST /v1/admin/snapshot", "GET /v1/%61dmin/info",
			"GET //v1/admin/info", "GET /v1/keys/../admin/info", "GET /v1/admin"} {
			method, path, _ := strings.Cut(p, " ")
			if r := ts.doAuth(t, method, path, token); r.status != 403 {
				t.Errorf("%s as %v = %d %q; want 403", p, role, r.status, r.body)
			}
		}
	}
	if r := ts.doAuth(t, "GET", "/v1/admin/info", "Bearer "+f.tokens[RoleAdmin]); r.status == 401 || r.status == 403 {
		t.Errorf("GET /v1/admin/info as admin = %d %q", r.status, r.body)
	}
}

func TestAuthHTTPBadCredentials(t *testing.T) {
	f := newAuthFixture(t)
	ts := startAuthHTTP(t, f.auth, Options{}, false)
	tok := f.tokens[RoleAdmin]
	tests := []struct {
		name  string
		authz []string
		msg   string
	}{
		{"missing", nil, "missing credentials"},
		{"empty header", []string{""}, "missing credentials"},
		{"garbage", []string{"Bearer kvs_garbage"}, "invalid or revoked token"},
		{"scheme only", []string{"Bearer"}, "bearer token is empty"},
		{"scheme and spaces", []string{"Bearer    "}, "bearer token is empty"},
		{"no scheme", []string{tok}, "Bearer scheme"},
		{"basic", []string{"Basic " + tok}, "Bearer scheme"},
		{"two tokens", []string{"Bearer " + tok + " " + tok}, "malformed bearer token"},
		{"two headers", []string{"Bearer " + tok, "Bearer " + tok}, "more than one authorization value"},
	}
	for _, tt := range tests {
		r := ts.doAuth(t, "GET", "/v1/keys/k", tt.authz...)
		r.wantError(t, 401, "UNAUTHENTICATED", tt.msg)
		if strings.Contains(r.body, tok) || strings.Contains(r.body, "garbage") || strings.Contains(r.header.Get("WWW-Authenticate"), tok) {
			t.Errorf("%s: response %q quotes the credentials", tt.name, r.body)
		}
	}
	// Extra spaces after the scheme and a lower-case scheme are fine.
	if r := ts.doAuth(t, "GET", "/v1/keys/k", "bearer   "+tok); r.status != 404 {
		t.Errorf("lower-case bearer = %d %q", r.status, r.body)
	}
}

func TestAuthReload(t *testing.T) {
	f := newAuthFixture(t)
	ts := startAuthServer(t, f.auth, Options{})
	hts := startAuthHTTP(t, f.auth, Options{}, false)
	get := func(tok string) error {
		_, err := ts.client.Get(bearer(context.Background(), tok), &kvstorepb.GetRequest{Key: "k"})
		return err
	}
	if err := get(f.tokens[RoleWrite]); err != nil {
		t.Fatal(err)
	}
	// Revoke write; demote admin to read.
	adminHash := strings.Fields(f.lines[RoleAdmin])[1]
	f.writeFile(t, f.lines[RoleRead]+"\nread "+adminHash+"\n")
	if err := f.auth.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := f.auth.Tokens(); got != 2 {
		t.Fatalf("Tokens() = %d after reload; want 2", got)
	}
	wantCode(t, get(f.tokens[RoleWrite]), codes.Unauthenticated, "invalid or revoked token")
	hts.doAuth(t, "GET", "/v1/keys/k", "Bearer "+f.tokens[RoleWrite]).wantError(t, 401, "UNAUTHENTICATED", "revoked")
	if err := get(f.tokens[RoleRead]); err != nil {
		t.Fatalf("read after reload: %v", err)
	}
	_, err := ts.client.Set(bearer(context.Background(), f.tokens[RoleAdmin]), &kvstorepb.SetRequest{Key: "k", Value: "v"})
	wantCode(t, err, codes.PermissionDenied, "needs the write role")

	// A broken file keeps the old table.
	f.writeFile(t, f.lines[RoleWrite]+"\nbogus line\n")
	err = f.auth.Reload()
	if err == nil || !strings.Contains(err.Error(), f.path+":2: ") {
		t.Fatalf("Reload of a bad file = %v; want an error naming %s:2", err, f.path)
	}
	wantCode(t, get(f.tokens[RoleWrite]), codes.Unauthenticated, "revoked")
	if err := get(f.tokens[RoleRead]); err != nil {
		t.Fatalf("read after a failed reload: %v", err)
	}
	// So does a missing one.
	os.Remove(f.path)
	if err := f.auth.Reload(); err == nil || !strings.Contains(err.Error(), f.path) {
		t.Fatalf("Reload of a missing file = %v", err)
	}
	if err := get(f.tokens[RoleRead]); err != nil {
		t.Fatalf("read after a failed reload: %v", err)
	}
	// An empty file revokes everything; health stays open.
	f.writeFile(t, "# all revoked\n")
	if err := f.auth.Reload(); err != nil {
		t.Fatal(err)
	}
	wantCode(t, get(f.tokens[RoleRead]), codes.Unauthenticated, "revoked")
	if _, err := ts.health.Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("health with every token revoked: %v", err)
	}
}

// TestAuthReloadConcurrent: checks racing reloads see one table or the
// other (run with -race).
func TestAuthReloadConcurrent(t *testing.T) {
	f := newAuthFixture(t)
	var wg sync.WaitGroup
	done := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				if fail := f.auth.check([]string{"Bearer " + f.tokens[RoleRead]}, RoleRead, "get"); fail != nil {
					t.Errorf("read token refused during reloads: %s", fail.msg)
					return
				}
			}
		}()
	}
	for i := range 50 {
		content := f.lines[RoleRead] + "\n"
		if i%2 == 0 {
			content += f.lines[RoleWrite] + "\n"
		}
		f.writeFile(t, content)
		if err := f.auth.Reload(); err != nil {
			t.Error(err)
		}
	}
	close(done)
	wg.Wait()
}

// TestAuthTokensNeverLogged drives every refusal with real tokens and
// checks that no response, error or log line (at debug) carries them.
func TestAuthTokensNeverLogged(t *testing.T) {
	f := newAuthFixture(t)
	var logs lockedBuffer
	opts := Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	ts := startAuthServer(t, f.auth, opts)
	hts := startAuthHTTP(t, f.auth, opts, false)
	secrets := []string{f.tokens[RoleRead], f.tokens[RoleWrite], f.tokens[RoleAdmin]}
	check := func(where, s string) {
		t.Helper()
		for _, tok := range secrets {
			// Half a token is as bad as all of it.
			if strings.Contains(s, tok[len(tokenPrefix):len(tokenPrefix)+20]) {
				t.Errorf("%s carries a token: %q", where, s)
			}
		}
	}
	var authz [][]string
	for _, tok := range secrets {
		authz = append(authz, []string{"Bearer " + tok}, []string{tok}, []string{"Basic " + tok},
			[]string{"Bearer " + tok + "x"}, []string{"Bearer " + tok + " junk"}, []string{"Bearer " + tok, "Bearer " + tok})
	}
	for _, a := range authz {
		ctx := context.Background()
		for _, v := range a {
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", v)
		}
		for _, call := range []func() error{
			func() error { _, err := ts.client.Set(ctx, &kvstorepb.SetRequest{Key: "k", Value: "v"}); return err },
			func() error { _, err := ts.client.Get(ctx, &kvstorepb.GetRequest{Key: "k"}); return err },
		} {
			if err := call(); err != nil {
				check("gRPC error", err.Error())
			}
		}
		for _, rt := range []struct{ method, path string }{{"PUT", "/v1/keys/k"}, {"GET", "/debug/pprof/cmdline"}, {"GET", "/metrics"}} {
			r := hts.doAuth(t, rt.method, rt.path, a...)
			if rt.path != "/debug/pprof/cmdline" || r.status != 200 { // cmdline echoes os.Args, not headers
				check("HTTP body", r.body)
			}
			check("HTTP headers", strings.Join(append(r.header.Values("WWW-Authenticate"), r.header.Values("Content-Type")...), " "))
		}
	}
	// An operator pastes tokens into the auth file.
	for _, content := range []string{"write " + secrets[1] + "\n", secrets[1] + "\n", "read " + strings.Repeat("0", 64) + " " + secrets[1] + " extra\n"} {
		f.writeFile(t, content)
		err := f.auth.Reload()
		if err == nil {
			t.Fatalf("Reload of %q succeeded", content)
		}
		check("Reload error", err.Error())
		_, err = LoadAuth(f.path)
		check("LoadAuth error", err.Error())
	}
	check("log", logs.String())
}

func TestAuthFileParsing(t *testing.T) {
	hashA := strings.Repeat("ab", 32)
	hashB := strings.Repeat("0c", 32)
	tests := []struct {
		name    string
		content string
		err     string // "" for valid
		tokens  int
	}{
		{"empty", "", "", 0},
		{"comments only", "# nothing\n   # indented\n\n\t\n", "", 0},
		{"full", "# tokens\nread " + hashA + " ci\n\nadmin " + strings.ToUpper(hashB) + " ops # on call\n", "", 2},
		{"crlf and bom", "\uFEFFwrite " + hashA + "\r\nread " + hashB + "\r\n", "", 2},
		{"no name, comment glued", "read " + hashA + " #note\n", "", 1},
		{"unknown role", "read " + hashA + "\n\nreader " + hashB + "\n", ":3: unknown role", 0},
		{"role case", "READ " + hashA + "\n", ":1: unknown role", 0},
		{"missing hash", "# x\nwrite\n", ":2: missing the token's SHA-256", 0},
		{"short hash", "write abc\n", ":1: second field has 3 characters; want the token's SHA-256 as 64 hex digits", 0},
		{"not hex", "write " + strings.Repeat("zz", 32) + "\n", ":1: second field is not hex", 0},
		{"token as hash", "write kvs_" + strings.Repeat("A", 43) + "\n", ":1: second field is a token", 0},
		{"token alone", "read " + hashA + "\nkvs_" + strings.Repeat("A", 43) + "\n", ":2: this looks like a token", 0},
		{"too many fields", "read " + hashA + " my name\n", ":1: 4 fields", 0},
		{"duplicate", "read " + hashA + "\nwrite " + hashB + "\nadmin " + strings.ToUpper(hashA) + "\n", ":3: same token hash as line 1", 0},
		{"control in name", "read " + hashA + " a\x01b\n", ":1: token name must not contain", 0},
		{"long name", "read " + hashA + " " + strings.Repeat("n", 129) + "\n", ":1: token name is over 128 bytes", 0},
		{"long line", "read " + hashA + "\n" + strings.Repeat("x", 70000) + "\n", ":2: line too long", 0},
	}
	dir := t.TempDir()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "auth.txt")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			a, err := LoadAuth(path)
			if tt.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if a.Tokens() != tt.tokens {
					t.Fatalf("Tokens() = %d; want %d", a.Tokens(), tt.tokens)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "auth: "+path+tt.err) {
				t.Fatalf("LoadAuth = %v; want an error containing %q", err, path+tt.err)
			}
		})
	}
	if _, err := LoadAuth(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("LoadAuth(missing) = %v", err)
	}
}

func TestAuthNewToken(t *testing.T) {
	tokenRE := regexp.MustCompile(`^kvs_[A-Za-z0-9_-]{43}$`)
	seen := map[string]bool{}
	for _, r := range []Role{RoleRead, RoleWrite, RoleAdmin} {
		for _, name := range []string{"", "ci@example"} {
			tok, line, err := NewToken(r, name)
			if err != nil {
				t.Fatal(err)
			}
			if !tokenRE.MatchString(tok) || seen[tok] {
				t.Fatalf("token %q: malformed or repeated", tok)
			}
			seen[tok] = true
			sum := sha256.Sum256([]byte(tok))
			want := r.String() + " " + hex.EncodeToString(sum[:])
			if name != "" {
				want += " " + name
			}
			if line != want {
				t.Fatalf("line %q; want %q", line, want)
			}
			table, err := parseAuthFile("new", []byte(line))
			if err != nil {
				t.Fatal(err)
			}
			if e, ok := table.lookup(tok); !ok || e.role != r || e.name != name {
				t.Fatalf("lookup after round trip = %+v, %v", e, ok)
			}
		}
	}
	if _, _, err := NewToken(Role(0), ""); !errors.Is(err, ErrUnknownRole) {
		t.Fatalf("NewToken(Role(0)) = %v", err)
	}
	if _, _, err := NewToken(RoleRead, "two words"); err == nil {
		t.Fatal("NewToken with a spaced name succeeded")
	}
}

func TestAuthParseRole(t *testing.T) {
	for _, r := range []Role{RoleRead, RoleWrite, RoleAdmin} {
		if got, err := ParseRole(r.String()); got != r || err != nil {
			t.Errorf("ParseRole(%q) = %v, %v", r.String(), got, err)
		}
	}
	for _, s := range []string{"", "Read", "owner", "admin "} {
		if _, err := ParseRole(s); !errors.Is(err, ErrUnknownRole) {
			t.Errorf("ParseRole(%q) = %v", s, err)
		}
	}
	if !(RoleRead < RoleWrite && RoleWrite < RoleAdmin) || Role(9).String() != "Role(9)" {
		t.Error("role order or String")
	}
}

// FuzzParseAuthFile: the parser never panics, never quotes its input in
// an error, and what it accepts formats back to a file that parses the
// same.
func FuzzParseAuthFile(f *testing.F) {
	hash := strings.Repeat("ab", 32)
	f.Add([]byte("# tokens\nread " + hash + " ci\n\nadmin " + strings.ToUpper(strings.Repeat("0c", 32)) + " ops # on call\n"))
	f.Add([]byte("write kvs_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"))
	f.Add([]byte("\uFEFFread " + hash + "\r\nread " + hash + "\r\n"))
	f.Add([]byte("reader " + hash + " a b\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		table, err := parseAuthFile("f", data)
		if err != nil {
			msg := err.Error()
			if !strings.HasPrefix(msg, "auth: f:") {
				t.Fatalf("error %q does not name the file", msg)
			}
			// No message word is this long, so a long field found in the
			// message was quoted from the file.
			for _, field := range strings.Fields(string(data)) {
				if len(field) >= 20 && strings.Contains(msg, field) {
					t.Fatalf("error %q quotes %q", msg, field)
				}
			}
			return
		}
		var out strings.Builder
		for _, e := range table.entries {
			out.WriteString(e.role.String() + " " + hex.EncodeToString(e.hash[:]) + " " + e.name + "\n")
		}
		again, err := parseAuthFile("f", []byte(out.String()))
		if err != nil {
			t.Fatalf("reformatted %q: %v", out.String(), err)
		}
		if len(again.entries) != len(table.entries) {
			t.Fatalf("reformatted file has %d entries; want %d", len(again.entries), len(table.entries))
		}
		for i := range again.entries {
			if again.entries[i] != table.entries[i] {
				t.Fatalf("entry %d: %+v after reformatting; want %+v", i, again.entries[i], table.entries[i])
			}
		}
		table.lookup(string(data))
	})
}
