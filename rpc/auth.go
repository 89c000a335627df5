package rpc

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/grpc/status"

	kvstorepb "kvstore/proto"
)

// Role is what a token may do. Roles are ordered: each allows everything
// the ones below it allow.
type Role int

const (
	// RoleRead may Get (gRPC Get, HTTP GET/HEAD /v1/keys/), use server
	// reflection and, when it is not open, scrape /metrics.
	RoleRead Role = iota + 1
	// RoleWrite may also Set and Delete.
	RoleWrite
	// RoleAdmin may do everything, including /debug/pprof/ and any RPC
	// not named in the role table (admin RPCs added later).
	RoleAdmin
)

// roleOpen marks a method or route that needs no token at all.
const roleOpen Role = 0

// String returns the role's name as written in the auth file.
func (r Role) String() string {
	switch r {
	case RoleRead:
		return "read"
	case RoleWrite:
		return "write"
	case RoleAdmin:
		return "admin"
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// ErrUnknownRole is returned by ParseRole and NewToken for a role other
// than read, write or admin.
var ErrUnknownRole = errors.New("unknown role: want read, write or admin")

// ParseRole returns the role named s: "read", "write" or "admin".
func ParseRole(s string) (Role, error) {
	switch s {
	case "read":
		return RoleRead, nil
	case "write":
		return RoleWrite, nil
	case "admin":
		return RoleAdmin, nil
	}
	return 0, ErrUnknownRole
}

func (r Role) valid() bool { return r >= RoleRead && r <= RoleAdmin }

// tokenPrefix starts every token NewToken makes, so that secret scanners
// and people recognise one (and the file parser can tell an operator who
// pasted a token where its hash belongs).
const tokenPrefix = "kvs_"

// tokenBytes is the entropy of a token: 256 bits, so that guessing one, or
// finding any string with the same SHA-256, is out of reach.
const tokenBytes = 32

// maxNameBytes bounds a token's NAME: a label for people, not a payload.
const maxNameBytes = 128

// NewToken returns a fresh random token for role and the auth file line
// that grants it: "ROLE SHA256HEX [NAME]". The token is "kvs_" followed by
// 32 random bytes in unpadded base64url (47 characters). Show the token to
// its user once; the server keeps only the line. name is an optional
// label (no white space or control characters, not starting with "#", at
// most 128 bytes).
func NewToken(role Role, name string) (token, line string, err error) {
	if !role.valid() {
		return "", "", ErrUnknownRole
	}
	if msg := checkName(name); msg != "" {
		return "", "", fmt.Errorf("token name: %s", msg)
	}
	var b [tokenBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("token: %w", err)
	}
	token = tokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	sum := sha256.Sum256([]byte(token))
	line = role.String() + " " + hex.EncodeToString(sum[:])
	if name != "" {
		line += " " + name
	}
	return token, line, nil
}

// checkName says what is wrong with a token name, or "" if nothing is.
func checkName(name string) string {
	switch {
	case len(name) > maxNameBytes:
		return fmt.Sprintf("is over %d bytes", maxNameBytes)
	case !utf8.ValidString(name):
		return "is not valid UTF-8"
	case strings.HasPrefix(name, "#"):
		return `must not start with "#" (that starts a comment)`
	case strings.IndexFunc(name, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return "must not contain white space or control characters"
	}
	return ""
}

// Auth checks bearer tokens against an auth file and each request's
// method against the token's role. It is safe for concurrent use: a
// request sees either the table before a Reload or the one after, never a
// mix.
//
// A nil *Auth means authentication is off: its interceptors pass every
// call through, HTTP returns the handler unchanged and Reload does
// nothing.
//
// Only SHA-256 hashes of tokens are kept. A presented token is hashed and
// compared with every entry in constant time (crypto/subtle), with no
// early exit, so the time taken depends only on the number of entries,
// not on which entry (or how much of one) matched. Tokens never appear in
// an error, a response or a log line; neither does an auth file's
// content, since an operator may have pasted a token into it by mistake.
type Auth struct {
	path  string
	table atomic.Pointer[authTable]
	// reloadMu orders Reloads, so that a slow one cannot store an older
	// reading of the file over a newer one.
	reloadMu sync.Mutex
}

// authTable is one reading of the auth file.
type authTable struct {
	entries []authEntry
}

type authEntry struct {
	hash [sha256.Size]byte
	role Role
	name string
}

// LoadAuth reads the auth file at path. Each line is
//
//	ROLE SHA256HEX [NAME]
//
// where ROLE is read, write or admin, SHA256HEX the 64 hex digits of the
// SHA-256 of the token (as NewToken prints) and NAME an optional label.
// Blank lines are skipped and a field starting with "#" comments out the
// rest of its line. A malformed line, or two lines with the same hash, is
// an error naming the file and the line number (never the line's text). A
// file without any token is valid: every call but health is refused, which
// is what emptying the file on a reload should do.
func LoadAuth(path string) (*Auth, error) {
	t, err := readAuthFile(path)
	if err != nil {
		return nil, err
	}
	a := &Auth{path: path}
	a.table.Store(t)
	return a, nil
}

// Reload reads the auth file again and swaps in its tokens atomically:
// calls already authorized finish, later ones use the new table. On error
// the old table stays in force and the error is returned. Call it on
// SIGHUP.
func (a *Auth) Reload() error {
	if a == nil {
		return nil
	}
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	t, err := readAuthFile(a.path)
	if err != nil {
		return err
	}
	a.table.Store(t)
	return nil
}

// Tokens returns the number of tokens the auth file in force grants, for
// a log line after loading or reloading.
func (a *Auth) Tokens() int {
	if a == nil {
		return 0
	}
	return len(a.table.Load().entries)
}

func readAuthFile(path string) (*authTable, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	return parseAuthFile(path, data)
}

// parseAuthFile parses the content of an auth file named name (for error
// messages). Its errors never quote the file: a token pasted in place of
// its hash must not reach a log.
func parseAuthFile(name string, data []byte) (*authTable, error) {
	t := &authTable{}
	firstLine := map[[sha256.Size]byte]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	lineNo := 0
	fail := func(format string, args ...any) error {
		return fmt.Errorf("auth: %s:%d: %s", name, lineNo, fmt.Sprintf(format, args...))
	}
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		if lineNo == 1 {
			line = strings.TrimPrefix(line, "\uFEFF") // a BOM some editors add
		}
		fields := strings.Fields(line)
		for i, f := range fields {
			if strings.HasPrefix(f, "#") {
				fields = fields[:i]
				break
			}
		}
		if len(fields) == 0 {
			continue
		}
		if len(fields) > 3 {
			return nil, fail("%d fields; want ROLE SHA256HEX [NAME]", len(fields))
		}
		role, err := ParseRole(fields[0])
		if err != nil {
			if strings.HasPrefix(fields[0], tokenPrefix) {
				return nil, fail("this looks like a token, not a line of the auth file; add the line `kvstore-server token new` printed (ROLE SHA256HEX [NAME]), and treat this token as leaked")
			}
			return nil, fail("unknown role: want read, write or admin")
		}
		if len(fields) < 2 {
			return nil, fail("missing the token's SHA-256; want ROLE SHA256HEX [NAME]")
		}
		var e authEntry
		e.role = role
		if strings.HasPrefix(fields[1], tokenPrefix) {
			return nil, fail("second field is a token, not its SHA-256; store the hash `kvstore-server token new` printed, and treat this token as leaked")
		}
		if len(fields[1]) != hex.EncodedLen(sha256.Size) {
			return nil, fail("second field has %d characters; want the token's SHA-256 as %d hex digits", utf8.RuneCountInString(fields[1]), hex.EncodedLen(sha256.Size))
		}
		if _, err := hex.Decode(e.hash[:], []byte(fields[1])); err != nil {
			return nil, fail("second field is not hex; want the token's SHA-256 as %d hex digits", hex.EncodedLen(sha256.Size))
		}
		if len(fields) == 3 {
			if msg := checkName(fields[2]); msg != "" {
				return nil, fail("token name %s", msg)
			}
			e.name = fields[2]
		}
		if prev, ok := firstLine[e.hash]; ok {
			return nil, fail("same token hash as line %d; each token may appear once", prev)
		}
		firstLine[e.hash] = lineNo
		t.entries = append(t.entries, e)
	}
	if err := sc.Err(); err != nil {
		lineNo++
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fail("line too long")
		}
		return nil, fail("%v", err)
	}
	return t, nil
}

// lookup returns the entry whose hash is SHA-256(token). Every entry is
// compared, in constant time, whatever matches: the time taken tells an
// attacker nothing but the number of entries.
func (t *authTable) lookup(token string) (authEntry, bool) {
	sum := sha256.Sum256([]byte(token))
	var found authEntry
	ok := false
	for i := range t.entries {
		if subtle.ConstantTimeCompare(sum[:], t.entries[i].hash[:]) == 1 {
			found, ok = t.entries[i], true
		}
	}
	return found, ok
}

// Lookup returns the role and name of token, for fronts that take a
// token in their own way (the Redis front's AUTH); ok is false for an
// unknown token. Constant time in the token, as for every lookup.
func (a *Auth) Lookup(token string) (role Role, name string, ok bool) {
	e, ok := a.table.Load().lookup(token)
	return e.role, e.name, ok
}

// authFailure is why a request was refused, as told to its sender. None
// of the messages includes anything the sender sent.
type authFailure struct {
	code codes.Code // Unauthenticated or PermissionDenied
	msg  string
	// invalidToken marks a token that was presented but is not known (RFC
	// 6750's error="invalid_token"), as against no credentials at all.
	invalidToken bool
}

var (
	failMissing = &authFailure{code: codes.Unauthenticated,
		msg: `missing credentials: send the header "authorization: Bearer TOKEN"`}
	failMultiple = &authFailure{code: codes.Unauthenticated,
		msg: "more than one authorization value; send exactly one", invalidToken: true}
	failScheme = &authFailure{code: codes.Unauthenticated,
		msg: `authorization must use the Bearer scheme: "Bearer TOKEN"`, invalidToken: true}
	failEmpty = &authFailure{code: codes.Unauthenticated,
		msg: `bearer token is empty: send "Bearer TOKEN"`, invalidToken: true}
	failMalformed = &authFailure{code: codes.Unauthenticated,
		msg: `malformed bearer token: send "Bearer TOKEN", the token without spaces`, invalidToken: true}
	failUnknown = &authFailure{code: codes.Unauthenticated,
		msg: "invalid or revoked token", invalidToken: true}
)

// check authorizes a request carrying the authorization values given,
// for something that needs role need; what names the call in a
// PermissionDenied message.
func (a *Auth) check(values []string, need Role, what string) *authFailure {
	if need == roleOpen {
		return nil
	}
	token, fail := bearerToken(values)
	if fail != nil {
		return fail
	}
	e, ok := a.table.Load().lookup(token)
	if !ok {
		return failUnknown
	}
	if e.role < need {
		return &authFailure{code: codes.PermissionDenied,
			msg: fmt.Sprintf("a %s token may not %s: it needs the %s role", e.role, what, need)}
	}
	return nil
}

// bearerToken returns the token of the one "Bearer TOKEN" in values. The
// scheme is matched without regard to case (RFC 9110 §11.1).
func bearerToken(values []string) (string, *authFailure) {
	switch len(values) {
	case 0:
		return "", failMissing
	case 1:
	default:
		return "", failMultiple
	}
	v := strings.TrimSpace(values[0])
	if v == "" {
		return "", failMissing
	}
	scheme, rest, _ := strings.Cut(v, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", failScheme
	}
	token := strings.TrimLeft(rest, " ")
	switch {
	case token == "":
		return "", failEmpty
	case strings.ContainsFunc(token, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		return "", failMalformed
	}
	return token, nil
}

// grpcRoles is the role each gRPC method needs. A method not listed needs
// admin, so an RPC added later is closed until it is given a role here;
// one under an open service (openServices) needs nothing.
var grpcRoles = map[string]Role{
	kvstorepb.KVStore_Get_FullMethodName:    RoleRead,
	kvstorepb.KVStore_Set_FullMethodName:    RoleWrite,
	kvstorepb.KVStore_Delete_FullMethodName: RoleWrite,
	// Reflection tells nothing the .proto does not, but there is no reason
	// to answer anonymous callers; grpcurl sends -H 'authorization: ...'.
	reflectionv1.ServerReflection_ServerReflectionInfo_FullMethodName:      RoleRead,
	reflectionv1alpha.ServerReflection_ServerReflectionInfo_FullMethodName: RoleRead,
}

// openServices need no token: load balancers and grpc-health-probe check
// health without one.
var openServices = []string{
	"/" + healthpb.Health_ServiceDesc.ServiceName + "/",
}

func grpcRole(fullMethod string) Role {
	if r, ok := grpcRoles[fullMethod]; ok {
		return r
	}
	for _, prefix := range openServices {
		if strings.HasPrefix(fullMethod, prefix) {
			return roleOpen
		}
	}
	return RoleAdmin
}

func (a *Auth) checkGRPC(ctx context.Context, fullMethod string) error {
	md, _ := metadata.FromIncomingContext(ctx)
	need := grpcRole(fullMethod)
	fail := a.check(md.Get("authorization"), need, "call "+fullMethod)
	// A known token, even one without the role, lifts the connection's
	// UnauthenticatedTimeout; a call that needs none proves nothing.
	if need != roleOpen && (fail == nil || fail.code == codes.PermissionDenied) {
		markAuthenticated(ctx)
	}
	if fail != nil {
		return status.Error(fail.code, fail.msg)
	}
	return nil
}

// UnaryInterceptor refuses unary RPCs without a valid "authorization:
// Bearer TOKEN" metadata value (Unauthenticated) or whose token's role is
// too low for the method (PermissionDenied): KVStore Get needs read, Set
// and Delete write, grpc.health.v1.Health nothing, any other method
// admin. Pass it to NewServer after the metrics interceptor, so that
// refused calls are counted with their code. A nil *Auth passes every
// call.
func (a *Auth) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if a != nil {
			if err := a.checkGRPC(ctx, info.FullMethod); err != nil {
				return nil, err
			}
		}
		return handler(ctx, req)
	}
}

// StreamInterceptor is UnaryInterceptor for streaming RPCs: server
// reflection (read), health Watch (open) and any streaming RPC added
// later (admin). Without it streams are not checked at all; pass it with
// grpc.ChainStreamInterceptor. A nil *Auth passes every stream.
func (a *Auth) StreamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if a != nil {
			if err := a.checkGRPC(ss.Context(), info.FullMethod); err != nil {
				return err
			}
		}
		return handler(srv, ss)
	}
}

// HTTP wraps the whole HTTP front h (NewHTTPHandler's) with the same
// checks, reading the Authorization header:
//
//	/healthz, /readyz          open
//	/metrics                   open if metricsOpen, else any role
//	/v1/keys/ GET, HEAD        read
//	/v1/keys/ PUT, DELETE      write
//	/debug/                    admin (pprof)
//	/v1/admin/                 admin
//	anything else              any role
//
// A refusal is the API's JSON error: 401 UNAUTHENTICATED with a
// WWW-Authenticate: Bearer challenge, or 403 PERMISSION_DENIED, sent
// without reading the request body (an HTTP/1 connection that has one is
// then closed). A nil *Auth returns h itself.
func (a *Auth) HTTP(h http.Handler, metricsOpen bool) http.Handler {
	if a == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		need, what := httpRole(r, metricsOpen)
		fail := a.check(r.Header.Values("Authorization"), need, what)
		if fail == nil {
			h.ServeHTTP(w, r)
			return
		}
		st := http.StatusForbidden
		if fail.code == codes.Unauthenticated {
			st = http.StatusUnauthorized
			challenge := `Bearer realm="kvstore"`
			if fail.invalidToken {
				challenge += `, error="invalid_token"`
			}
			w.Header().Set("WWW-Authenticate", challenge)
		}
		w.Header().Set("Cache-Control", "no-store")
		closeIfBodyUnread(w, r)
		writeError(w, st, fail.code, fail.msg)
	})
}

// httpRole returns the role a request needs and how to name it in a
// refusal (the route pattern, never the key). It looks at the path both
// as sent and decoded, and cleaned, taking the strictest answer, so that
// an oddly spelt path cannot reach pprof with less than admin; a path is
// open only if every spelling of it is exactly an open one.
func httpRole(r *http.Request, metricsOpen bool) (Role, string) {
	escaped, decoded := r.URL.EscapedPath(), r.URL.Path
	if escaped == decoded {
		switch decoded {
		case "/healthz", "/readyz":
			return roleOpen, ""
		case "/metrics":
			if metricsOpen {
				return roleOpen, ""
			}
		}
	}
	for _, p := range []string{escaped, decoded, path.Clean("/" + escaped), path.Clean("/" + decoded)} {
		if p == "/debug" || strings.HasPrefix(p, "/debug/") {
			return RoleAdmin, "use /debug/"
		}
		if p == "/v1/admin" || strings.HasPrefix(p, "/v1/admin/") {
			return RoleAdmin, "use /v1/admin/"
		}
	}
	// The HTTP front serves keys from the escaped path (see
	// httpHandler.ServeHTTP); any other path needs read, so nothing is
	// lost by looking only there.
	if strings.HasPrefix(escaped, keysPrefix) && (r.Method == http.MethodPut || r.Method == http.MethodDelete) {
		return RoleWrite, r.Method + " " + keysPrefix + "{key}"
	}
	// Read is the lowest role, so this is never refused for the role; the
	// name is unused.
	return RoleRead, r.Method + " this path"
}
