package rpc

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"runtime/debug"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	kvstorepb "kvstore/proto"
)

// HTTPOptions configures the handler NewHTTPHandler returns.
type HTTPOptions struct {
	// Ready reports whether the server should receive traffic: data
	// recovered and not draining. It answers GET /readyz; pass the same
	// condition that drives the gRPC health service so both agree. Nil means
	// ready once the Service has its actor (see Attach).
	Ready func() bool
	// Pprof serves net/http/pprof under /debug/pprof/.
	Pprof bool
	// Metrics, when non-nil, is served at GET /metrics.
	Metrics http.Handler
	// Instrument, when non-nil, wraps each route's handler (metrics by
	// route; see Metrics.HTTP). route is a pattern, never a key.
	Instrument func(route string, h http.Handler) http.Handler
	// Admin, when non-nil, serves /v1/admin/backup, /v1/admin/info and
	// /v1/admin/snapshot (see Admin).
	Admin *Admin
}

// keysPrefix is the escaped path under which every key lives.
const keysPrefix = "/v1/keys/"

// bodySlack is the room in a PUT body for everything but the value: the
// field names, ttl_seconds, quotes and whitespace.
const bodySlack = 4096

// keysAllow lists the methods /v1/keys/{key} accepts (the Allow header of
// a 405).
const keysAllow = "GET, HEAD, PUT, DELETE"

// NewHTTPHandler returns the HTTP/JSON front of svc:
//
//	PUT    /v1/keys/{key}  {"value": "...", "ttl_seconds": 30} → 200 {"success": true}
//	GET    /v1/keys/{key}  → 200 {"found": true, "value": "..."} or 404 {"found": false}
//	DELETE /v1/keys/{key}  → 200 {"success": true, "deleted": bool}
//	GET    /healthz        → 200 ok while the process runs
//	GET    /readyz         → 200 ok when opts.Ready says so, else 503
//	GET    /metrics        → opts.Metrics, when set
//	       /debug/pprof/   → net/http/pprof, when opts.Pprof
//
// The key API calls svc's Set, Get and Delete in-process, so its
// validation and limits are exactly those of gRPC; a failure is a JSON
// object {"code": "INVALID_ARGUMENT", "message": "..."} whose code is the
// canonical gRPC code name, with the HTTP status mapped from it (see
// httpStatus).
//
// The key is everything in the escaped request path after /v1/keys/,
// percent-decoded once: "/" may appear literally or as %2F (a/b and a%2Fb
// are the same key), and any byte may be sent percent-encoded. "?" and "#"
// must be sent as %3F and %23: a query string is refused rather than
// silently cutting the key short. The path is taken as sent, not cleaned,
// so a//b and a/./b are keys of their own, but many clients remove "."
// and ".." segments before sending; encode them (%2E) to keep them. Keys
// must be valid UTF-8, as gRPC's proto3 strings must.
//
// A PUT body is a JSON object with "value" (required) and "ttl_seconds"
// (optional, default 0: no expiry, clearing an earlier TTL); unknown
// fields, a field given twice, field names in another case and trailing
// data are refused. A value must be valid UTF-8, as gRPC's proto3 strings
// must: invalid bytes and \u escapes of unpaired UTF-16 surrogates, which
// encoding/json would store as U+FFFD, are refused naming the field. The
// body is read as JSON when its content type is application/json, missing
// or application/x-www-form-urlencoded (curl's default for -d, taken as
// grpc-gateway does); other types are 415. It may be at most 6×MaxValueBytes+4 KiB, which fits any valid
// value even with every byte escaped as \u00XX, so a value over the limit
// still gets the service's clear InvalidArgument; a larger body is 413,
// and one cut short by the server's read timeout 408 DEADLINE_EXCEEDED.
// An HTTP/1 request whose body is not read to its end (a refusal, a route
// that takes none) is answered without waiting for the body, and its
// connection closed.
//
// Nothing is logged per request. A panicking handler is logged with its
// stack and answered 500 INTERNAL, as on the gRPC side.
func NewHTTPHandler(svc *Service, opts HTTPOptions) http.Handler {
	h := &httpHandler{
		svc:     svc,
		ready:   opts.Ready,
		logger:  svc.opts.Logger,
		maxBody: 6*int64(svc.opts.MaxValueBytes) + bodySlack,
		mux:     http.NewServeMux(),
	}
	if h.ready == nil {
		h.ready = func() bool { return svc.actor.Load() != nil }
	}
	instrument := opts.Instrument
	if instrument == nil {
		instrument = func(_ string, h http.Handler) http.Handler { return h }
	}
	h.mux.Handle("GET /healthz", instrument("/healthz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeText(w, http.StatusOK, "ok")
	})))
	h.mux.Handle("GET /readyz", instrument("/readyz", h.recoverPanic("GET /readyz", http.HandlerFunc(h.readyz))))
	if opts.Metrics != nil {
		h.mux.Handle("GET /metrics", opts.Metrics)
	}
	if opts.Pprof {
		h.mux.HandleFunc("/debug/pprof/", pprof.Index)
		h.mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		h.mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		h.mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		h.mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	if opts.Admin != nil {
		opts.Admin.registerHTTP(h.mux, func(route string, next http.Handler) http.Handler {
			return instrument(route, h.recoverPanic(route, next))
		})
	}
	// Any other /v1/ path answers in the API's JSON error shape.
	h.mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, codes.NotFound, "no such endpoint; keys live under "+keysPrefix+"{key}")
	})
	h.keys = instrument("/v1/keys/{key}", h.recoverPanic("/v1/keys/{key}", http.HandlerFunc(h.serveKey)))
	return h
}

type httpHandler struct {
	svc     *Service
	ready   func() bool
	logger  *slog.Logger
	maxBody int64
	mux     *http.ServeMux
	keys    http.Handler
}

// ServeHTTP routes /v1/keys/ itself: ServeMux would redirect keys that
// are not clean paths (a//b, a/./b, ".") instead of serving them.
func (h *httpHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 1 && r.ContentLength != 0 {
		body := &watchedBody{ReadCloser: r.Body}
		r2 := *r
		r2.Body = body
		r = &r2
		w = &closeUnreadBody{ResponseWriter: w, body: body}
	}
	if strings.HasPrefix(r.URL.EscapedPath(), keysPrefix) {
		h.keys.ServeHTTP(w, r)
		return
	}
	h.mux.ServeHTTP(w, r)
}

func (h *httpHandler) readyz(w http.ResponseWriter, r *http.Request) {
	if !h.ready() {
		writeText(w, http.StatusServiceUnavailable, "not ready")
		return
	}
	writeText(w, http.StatusOK, "ok")
}

// onlyReadLevel reports whether a query is just the read level.
func onlyReadLevel(rawQuery string) bool {
	q, err := url.ParseQuery(rawQuery)
	return err == nil && len(q) == 1 && len(q["read"]) == 1
}

// httpMetadata is r's context carrying, as gRPC metadata, what a cluster
// node needs to serve or forward it: the credentials and the read level
// (a Kvstore-Read header, or ?read=stale).
func httpMetadata(r *http.Request) context.Context {
	md := metadata.MD{}
	if a := r.Header.Get("Authorization"); a != "" {
		md.Set("authorization", a)
	}
	if lvl := cmp.Or(r.Header.Get("Kvstore-Read"), r.URL.Query().Get("read")); lvl != "" {
		md.Set(ReadLevelKey, lvl)
	}
	if len(md) == 0 {
		return r.Context()
	}
	return metadata.NewIncomingContext(r.Context(), md)
}

// setBody is the body of PUT /v1/keys/{key}.
type setBody struct {
	Value      *string `json:"value"`
	TTLSeconds int64   `json:"ttl_seconds"`
}

func (h *httpHandler) serveKey(w http.ResponseWriter, r *http.Request) {
	key, err := keyFromPath(r.URL)
	if err != nil {
		writeError(w, http.StatusBadRequest, codes.InvalidArgument, err.Error())
		return
	}
	ctx := httpMetadata(r)
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		resp, err := h.svc.Get(ctx, &kvstorepb.GetRequest{Key: key})
		switch {
		case err != nil:
			writeStatus(w, err)
		case !resp.GetFound():
			writeJSON(w, http.StatusNotFound, struct {
				Found bool `json:"found"`
			}{false})
		default:
			writeJSON(w, http.StatusOK, struct {
				Found bool   `json:"found"`
				Value string `json:"value"`
			}{true, resp.GetValue()})
		}
	case http.MethodPut:
		body, bad := h.readSetBody(w, r)
		if bad != nil {
			writeError(w, bad.status, bad.code, bad.msg)
			return
		}
		if _, err := h.svc.Set(ctx, &kvstorepb.SetRequest{Key: key, Value: *body.Value, TtlSeconds: body.TTLSeconds}); err != nil {
			writeStatus(w, err)
			return
		}
		writeJSON(w, http.StatusOK, struct {
			Success bool `json:"success"`
		}{true})
	case http.MethodDelete:
		resp, err := h.svc.Delete(ctx, &kvstorepb.DeleteRequest{Key: key})
		if err != nil {
			writeStatus(w, err)
			return
		}
		writeJSON(w, http.StatusOK, struct {
			Success bool `json:"success"`
			Deleted bool `json:"deleted"`
		}{true, resp.GetDeleted()})
	default:
		w.Header().Set("Allow", keysAllow)
		writeError(w, http.StatusMethodNotAllowed, codes.Unimplemented,
			fmt.Sprintf("method %s is not allowed on %s{key}; allowed: %s", r.Method, keysPrefix, keysAllow))
	}
}

// keyFromPath returns the key named by u: the escaped path after
// /v1/keys/, percent-decoded once.
func keyFromPath(u *url.URL) (string, error) {
	if u.ForceQuery || (u.RawQuery != "" && !onlyReadLevel(u.RawQuery)) {
		return "", errors.New(`the only query parameter is read=stale; send "?" in a key as %3F`)
	}
	key, err := url.PathUnescape(strings.TrimPrefix(u.EscapedPath(), keysPrefix))
	if err != nil {
		return "", fmt.Errorf("key is not a valid percent-encoded path: %v", err)
	}
	if !utf8.ValidString(key) {
		return "", errors.New("key must be valid UTF-8")
	}
	return key, nil
}

// closeIfBodyUnread makes an HTTP/1 response to a request whose body is
// not read close the connection. Otherwise net/http reads (up to 256 KiB
// of) the body before it sends the response, to keep the connection, so
// a client that announces a body and never sends it would get no answer
// until the read timeout.
func closeIfBodyUnread(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 1 && r.ContentLength != 0 {
		w.Header().Set("Connection", "close")
	}
}

// watchedBody records whether a request body was read to its end.
type watchedBody struct {
	io.ReadCloser
	eof bool
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

// closeUnreadBody applies closeIfBodyUnread to every response the API
// sends before it has read the body to its end: refusals (bad key, wrong
// method, content type, size), bodies that are not valid JSON, and
// routes that take none.
type closeUnreadBody struct {
	http.ResponseWriter
	body        *watchedBody
	wroteHeader bool
}

func (w *closeUnreadBody) WriteHeader(code int) {
	if !w.wroteHeader {
		w.wroteHeader = true
		if !w.body.eof {
			w.Header().Set("Connection", "close")
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *closeUnreadBody) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *closeUnreadBody) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush keeps http.Flusher for the handlers that stream (pprof).
func (w *closeUnreadBody) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}

// badRequestBody says why a PUT body was refused.
type badRequestBody struct {
	status int
	code   codes.Code
	msg    string
}

const setBodyExample = `{"value": "...", "ttl_seconds": 30}`

func isMaxBytes(err error) bool {
	var maxErr *http.MaxBytesError
	return errors.As(err, &maxErr)
}

// readSetBody decodes a PUT body.
func (h *httpHandler) readSetBody(w http.ResponseWriter, r *http.Request) (setBody, *badRequestBody) {
	var body setBody
	// A form content type is what curl -d and many HTTP libraries send
	// when not told otherwise; the body is read as JSON all the same. A
	// browser cannot use it to slip a cross-site write past CORS: PUT is
	// never a simple request, whatever its content type.
	form := false
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		switch {
		case err == nil && mt == "application/json":
		case err == nil && mt == "application/x-www-form-urlencoded":
			form = true
		default:
			return body, &badRequestBody{http.StatusUnsupportedMediaType, codes.InvalidArgument,
				fmt.Sprintf("content type %q is not supported; send application/json", ct)}
		}
	}
	tooLarge := &badRequestBody{http.StatusRequestEntityTooLarge, codes.ResourceExhausted,
		fmt.Sprintf("request body is over the %d-byte limit (6 × --max-value-bytes + %d)", h.maxBody, bodySlack)}
	if r.ContentLength > h.maxBody {
		return body, tooLarge
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, h.maxBody))
	err := decodeSetBody(dec, &body)
	if err == nil {
		// One JSON value and nothing after it but white space.
		if _, err = dec.Token(); err == io.EOF {
			err = nil
		} else if err == nil || !isMaxBytes(err) {
			err = errors.New("unexpected data after the JSON object")
		}
	}
	var typeErr *json.UnmarshalTypeError
	var textErr *notTextError
	switch {
	case isMaxBytes(err):
		return body, tooLarge
	case errors.Is(err, os.ErrDeadlineExceeded):
		// The server's read timeout (see server.Config) ended the body.
		return body, &badRequestBody{http.StatusRequestTimeout, codes.DeadlineExceeded,
			"request body did not arrive in time; send it all within the server's read timeout"}
	case errors.Is(err, io.EOF):
		return body, &badRequestBody{http.StatusBadRequest, codes.InvalidArgument,
			"request body is empty; send a JSON object like " + setBodyExample}
	case errors.As(err, &typeErr):
		msg := fmt.Sprintf("request body must be a JSON object like %s, got %s", setBodyExample, typeErr.Value)
		switch typeErr.Field {
		case "value":
			msg = fmt.Sprintf(`"value" must be a string, got %s`, typeErr.Value)
		case "ttl_seconds":
			msg = fmt.Sprintf(`"ttl_seconds" must be an integer that fits in 64 bits, got %s`, typeErr.Value)
		}
		return body, &badRequestBody{http.StatusBadRequest, codes.InvalidArgument, msg}
	case errors.As(err, &textErr):
		return body, &badRequestBody{http.StatusBadRequest, codes.InvalidArgument, textErr.Error()}
	case err != nil:
		msg := "invalid JSON body: " + strings.TrimPrefix(err.Error(), "json: ")
		if form {
			msg += "; form fields are not read: send a JSON object like " + setBodyExample +
				" (a body sent as application/x-www-form-urlencoded, curl's default for -d, is read as JSON)"
		}
		return body, &badRequestBody{http.StatusBadRequest, codes.InvalidArgument, msg}
	case body.Value == nil:
		return body, &badRequestBody{http.StatusBadRequest, codes.InvalidArgument, `"value" is required`}
	}
	return body, nil
}

// decodeSetBody decodes one JSON value from dec into body, strictly:
// encoding/json alone takes the last of two fields of one name and
// matches names without regard to case ("VALUE", even "ſ" for "s"), so a
// proxy or an audit log reading the same body another way could see
// another write. Each field of setBody must appear at most once, spelt
// exactly; any other name is an unknown field. A JSON null is an empty
// body (no "value"), as encoding/json has it.
func decodeSetBody(dec *json.Decoder, body *setBody) error {
	t, err := dec.Token()
	if err != nil {
		return err
	}
	switch t := t.(type) {
	case nil:
		return nil
	case json.Delim:
		if t != '{' {
			return &json.UnmarshalTypeError{Value: "array"}
		}
	case string:
		return &json.UnmarshalTypeError{Value: "string"}
	case bool:
		return &json.UnmarshalTypeError{Value: "bool"}
	default:
		return &json.UnmarshalTypeError{Value: "number"}
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return unexpectedEOF(err)
		}
		name, _ := t.(string) // object keys are strings
		if seen[name] {
			return fmt.Errorf("duplicate field %q", name)
		}
		seen[name] = true
		switch name {
		case "value":
			// The raw literal first: decoded, invalid UTF-8 and lone
			// surrogates are already U+FFFD, indistinguishable from a
			// U+FFFD that was sent.
			var raw json.RawMessage
			if err = dec.Decode(&raw); err != nil {
				break
			}
			if len(raw) > 0 && raw[0] == '"' {
				if off, what := notText(raw); off >= 0 {
					start := int(dec.InputOffset()) - len(raw)
					return &notTextError{field: name, what: what, offset: start + off}
				}
			}
			err = json.Unmarshal(raw, &body.Value)
		case "ttl_seconds":
			err = dec.Decode(&body.TTLSeconds)
		default:
			for _, known := range []string{"value", "ttl_seconds"} {
				if strings.EqualFold(name, known) {
					return fmt.Errorf("unknown field %q (field names are case-sensitive: %q)", name, known)
				}
			}
			return fmt.Errorf("unknown field %q", name)
		}
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			typeErr.Field = name
		}
		if err != nil {
			return unexpectedEOF(err)
		}
	}
	_, err = dec.Token() // the closing brace
	return unexpectedEOF(err)
}

// notTextError is returned for a JSON string that encoding/json would
// decode to other text than was sent.
type notTextError struct {
	field  string
	what   string // "byte 0xff", or the \u escape as sent
	offset int    // of what, in the body
}

func (e *notTextError) Error() string {
	msg := fmt.Sprintf("%q is not valid UTF-8: %s at offset %d of the body", e.field, e.what, e.offset)
	if e.what[0] == '\\' {
		msg += " is an unpaired UTF-16 surrogate, not a character"
	}
	return msg + "; values are stored exactly as sent, and gRPC strings, like JSON's, hold only UTF-8 text"
}

// notText returns the offset in lit of the first thing encoding/json would
// replace with U+FFFD when it decodes lit, with what it is, or -1: a byte
// that is not UTF-8 (a UTF-8-encoded surrogate included), or a \u escape
// of a UTF-16 surrogate that is not half of a high-low pair. lit is one
// JSON string literal, quotes included, that a json.Decoder has accepted.
func notText(lit []byte) (int, string) {
	if bytes.IndexByte(lit, '\\') < 0 && utf8.Valid(lit) {
		return -1, ""
	}
	end := len(lit) - 1 // the closing quote
	for i := 1; i < end; {
		switch c := lit[i]; {
		case c == '\\':
			if lit[i+1] != 'u' {
				i += 2
				continue
			}
			r := hex4(lit[i+2 : i+6])
			if !utf16.IsSurrogate(r) {
				i += 6
				continue
			}
			if i+12 <= end && lit[i+6] == '\\' && lit[i+7] == 'u' &&
				utf16.DecodeRune(r, hex4(lit[i+8:i+12])) != utf8.RuneError {
				i += 12
				continue
			}
			return i, string(lit[i : i+6])
		case c < utf8.RuneSelf:
			i++
		default:
			r, n := utf8.DecodeRune(lit[i:end])
			if r == utf8.RuneError && n == 1 {
				return i, fmt.Sprintf("byte 0x%02x", c)
			}
			i += n
		}
	}
	return -1, ""
}

// hex4 is the value of four hex digits, which the JSON decoder has checked.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case c <= '9':
			c -= '0'
		case c >= 'a':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// unexpectedEOF is err, but io.ErrUnexpectedEOF for io.EOF: inside an
// object the body has ended too soon, it is not empty.
func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// recoverPanic turns a panic in next into 500 INTERNAL and logs it with
// its stack, so one bad request cannot take the server down. The handlers
// it wraps write their response only at the end, so nothing has been sent
// yet when they panic.
func (h *httpHandler) recoverPanic(route string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			if p == http.ErrAbortHandler {
				panic(p) // net/http's way to abort a response silently
			}
			h.logger.Error("panic in HTTP handler", "route", route, "method", r.Method, "panic", p, "stack", string(debug.Stack()))
			writeError(w, http.StatusInternalServerError, codes.Internal, "internal error")
		}()
		next.ServeHTTP(w, r)
	})
}

// writeStatus answers with the gRPC status of err.
func writeStatus(w http.ResponseWriter, err error) {
	s := status.Convert(err)
	writeError(w, httpStatus(s.Code()), s.Code(), s.Message())
}

// httpStatus maps a gRPC code to an HTTP status, as grpc-gateway and the
// google.rpc.Code documentation do. Canceled is 499 (nginx's "client closed
// request"): the request context ends only when the client has gone away,
// so nobody reads the answer, but logs and metrics that wrap this handler
// should not count it as a server failure (503) or a server timeout (408).
func httpStatus(c codes.Code) int {
	switch c {
	case codes.OK:
		return http.StatusOK
	case codes.Canceled:
		return 499
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
		return http.StatusBadRequest
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case codes.NotFound:
		return http.StatusNotFound
	case codes.AlreadyExists, codes.Aborted:
		return http.StatusConflict
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.Unimplemented:
		return http.StatusNotImplemented
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError // Unknown, Internal, DataLoss
}

// codeNames are the canonical upper-snake names of the gRPC codes
// (google.rpc.Code), as they appear in the "code" of an error body.
var codeNames = [...]string{
	codes.OK:                 "OK",
	codes.Canceled:           "CANCELLED",
	codes.Unknown:            "UNKNOWN",
	codes.InvalidArgument:    "INVALID_ARGUMENT",
	codes.DeadlineExceeded:   "DEADLINE_EXCEEDED",
	codes.NotFound:           "NOT_FOUND",
	codes.AlreadyExists:      "ALREADY_EXISTS",
	codes.PermissionDenied:   "PERMISSION_DENIED",
	codes.ResourceExhausted:  "RESOURCE_EXHAUSTED",
	codes.FailedPrecondition: "FAILED_PRECONDITION",
	codes.Aborted:            "ABORTED",
	codes.OutOfRange:         "OUT_OF_RANGE",
	codes.Unimplemented:      "UNIMPLEMENTED",
	codes.Internal:           "INTERNAL",
	codes.Unavailable:        "UNAVAILABLE",
	codes.DataLoss:           "DATA_LOSS",
	codes.Unauthenticated:    "UNAUTHENTICATED",
}

func codeName(c codes.Code) string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return "UNKNOWN"
}

// httpError is the body of every failed API request.
type httpError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, httpStatus int, c codes.Code, msg string) {
	writeJSON(w, httpStatus, httpError{Code: codeName(c), Message: msg})
}

func writeJSON(w http.ResponseWriter, httpStatus int, v any) {
	b, _ := json.Marshal(v) // plain structs of strings and bools: cannot fail
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(httpStatus)
	w.Write(append(b, '\n')) // an error means the client has gone; nothing to do
}

func writeText(w http.ResponseWriter, httpStatus int, s string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(httpStatus)
	io.WriteString(w, s)
}
