package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/benbjohnson/clock"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	kvstorepb "kvstore/proto"
)

// AdminBackend is the storage side of the Admin service. The server
// package implements it over the actor, the snapshot files and the log,
// which rpc does not import.
type AdminBackend interface {
	// Backup freezes the data set (O(shards), on the owner) and returns
	// it; the caller must Release it.
	Backup(ctx context.Context) (BackupSource, error)
	// Snapshot writes a snapshot now and describes it.
	Snapshot(ctx context.Context) (*kvstorepb.SnapshotResponse, error)
	// Info fills in the storage's and the configuration's part of an
	// InfoResponse: everything but the version, uptime and heap.
	Info(ctx context.Context) (*kvstorepb.InfoResponse, error)
}

// BackupSource is a frozen point-in-time view of the data set.
type BackupSource interface {
	// Seq is the cut: the sequence number of the last write in the view.
	Seq() uint64
	// Keys is the number of entries Encode writes.
	Keys() uint64
	// Encode writes the view to w in the snapshot file format, whole
	// blocks at a time, and returns the file's size and its checksum.
	Encode(w io.Writer) (size int64, checksum uint32, err error)
	// Release lets the owner stop preserving the view. Idempotent.
	Release()
}

// Admin implements kvstorepb.AdminServer and the HTTP front's
// /v1/admin/ routes over an AdminBackend, which Attach supplies once
// recovery is done; until then every call is Unavailable.
type Admin struct {
	kvstorepb.UnimplementedAdminServer
	backend atomic.Pointer[adminBackend]
	cluster atomic.Pointer[clusterBox]
	clock   clock.Clock
	started time.Time
	// httpWriteTimeout is how long one chunk of an HTTP backup may take
	// to be written; it replaces the server's whole-response timeout.
	httpWriteTimeout time.Duration
}

type adminBackend struct{ AdminBackend }

// NewAdmin returns an Admin whose uptime counts from now on clk (nil:
// the real clock).
func NewAdmin(clk clock.Clock) *Admin {
	if clk == nil {
		clk = clock.New()
	}
	return &Admin{clock: clk, started: clk.Now(), httpWriteTimeout: backupChunkTimeout}
}

// backupChunkTimeout bounds how long an HTTP backup waits for a client to
// take one chunk: a client that stops reading lets go of the frozen view.
const backupChunkTimeout = time.Minute

// Attach makes the service answer from b.
func (a *Admin) Attach(b AdminBackend) { a.backend.Store(&adminBackend{b}) }

func (a *Admin) get() (AdminBackend, error) {
	b := a.backend.Load()
	if b == nil {
		return nil, status.Error(codes.Unavailable, "server is starting: recovery is not done")
	}
	return b.AdminBackend, nil
}

// adminError gives a backend error a status: its own when it has one,
// Canceled / DeadlineExceeded for an ended context, else Unavailable (the
// storage could not do it now; a retry may succeed).
func adminError(op string, err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Errorf(codes.Canceled, "%s: %v", op, err)
	case errors.Is(err, context.DeadlineExceeded):
		return status.Errorf(codes.DeadlineExceeded, "%s: %v", op, err)
	}
	return status.Errorf(codes.Unavailable, "%s: %v", op, err)
}

// chunkWriter turns each Write into one message.
type chunkWriter func(p []byte) error

func (w chunkWriter) Write(p []byte) (int, error) {
	if err := w(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Backup streams the frozen view as BackupChunks: the first carries the
// cut and the key count, the last the size and checksum. Send blocks on
// the client's flow-control window, so the server holds about one block.
func (a *Admin) Backup(_ *kvstorepb.BackupRequest, stream grpc.ServerStreamingServer[kvstorepb.BackupChunk]) error {
	b, err := a.get()
	if err != nil {
		return err
	}
	src, err := b.Backup(stream.Context())
	if err != nil {
		return adminError("backup", err)
	}
	defer src.Release()
	first := true
	size, sum, err := src.Encode(chunkWriter(func(p []byte) error {
		msg := &kvstorepb.BackupChunk{Data: p}
		if first {
			msg.Seq, msg.Keys, first = src.Seq(), src.Keys(), false
		}
		return stream.Send(msg)
	}))
	if err != nil {
		if ctxErr := stream.Context().Err(); ctxErr != nil {
			err = ctxErr
		}
		return adminError("backup", err)
	}
	return stream.Send(&kvstorepb.BackupChunk{Last: true, Checksum: sum, Size: uint64(size)})
}

// Snapshot writes a snapshot now.
func (a *Admin) Snapshot(ctx context.Context, _ *kvstorepb.SnapshotRequest) (*kvstorepb.SnapshotResponse, error) {
	b, err := a.get()
	if err != nil {
		return nil, err
	}
	resp, err := b.Snapshot(ctx)
	if err != nil {
		return nil, adminError("snapshot", err)
	}
	return resp, nil
}

// Info reports the server.
func (a *Admin) Info(ctx context.Context, _ *kvstorepb.InfoRequest) (*kvstorepb.InfoResponse, error) {
	b, err := a.get()
	if err != nil {
		return nil, err
	}
	resp, err := b.Info(ctx)
	if err != nil {
		return nil, adminError("info", err)
	}
	resp.Version = Version()
	resp.GoVersion = runtime.Version()
	resp.UptimeSeconds = a.clock.Since(a.started).Seconds()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	resp.HeapBytes = ms.HeapAlloc
	return resp, nil
}

// Version names the running build: the main module's version when it
// was built from a tagged module, else its VCS revision (with "+dirty"
// for a modified tree), else "devel".
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev == "" {
		return "devel"
	}
	return rev[:min(len(rev), 12)] + dirty
}

// registerHTTP adds the /v1/admin/ routes to mux; instrument and recover
// wrap each as the other routes are.
func (a *Admin) registerHTTP(mux *http.ServeMux, wrap func(route string, h http.Handler) http.Handler) {
	mux.Handle("GET /v1/admin/backup", wrap("/v1/admin/backup", http.HandlerFunc(a.httpBackup)))
	mux.Handle("GET /v1/admin/info", wrap("/v1/admin/info", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := a.Info(r.Context(), &kvstorepb.InfoRequest{})
		writeProto(w, resp, err)
	})))
	mux.Handle("POST /v1/admin/snapshot", wrap("/v1/admin/snapshot", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := a.Snapshot(r.Context(), &kvstorepb.SnapshotRequest{})
		writeProto(w, resp, err)
	})))
}

// adminJSON prints every field, zeros included: Info's readers look for
// a field by name.
var adminJSON = protojson.MarshalOptions{EmitUnpopulated: true, UseProtoNames: true}

// writeProto answers with m as JSON, or err in the API's error shape.
func writeProto(w http.ResponseWriter, m proto.Message, err error) {
	if err != nil {
		writeStatus(w, err)
		return
	}
	b, err := adminJSON.Marshal(m)
	if err != nil {
		writeStatus(w, status.Errorf(codes.Internal, "encode response: %v", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(append(b, '\n'))
}

// httpBackup is GET /v1/admin/backup: the same bytes as the gRPC stream,
// as a file download. The cut and key count are headers, the size and
// checksum trailers. A failure after the first byte aborts the response,
// so a client sees a truncated transfer, never a short file as complete.
func (a *Admin) httpBackup(w http.ResponseWriter, r *http.Request) {
	b, err := a.get()
	if err != nil {
		writeStatus(w, err)
		return
	}
	src, err := b.Backup(r.Context())
	if err != nil {
		writeStatus(w, adminError("backup", err))
		return
	}
	defer src.Release()
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="kvstore-backup-%d.snap"`, src.Seq()))
	h.Set("Cache-Control", "no-store")
	h.Set("Kvstore-Seq", strconv.FormatUint(src.Seq(), 10))
	h.Set("Kvstore-Keys", strconv.FormatUint(src.Keys(), 10))
	h.Set("Trailer", "Kvstore-Size, Kvstore-Checksum")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	size, sum, err := src.Encode(chunkWriter(func(p []byte) error {
		// Each chunk gets its own deadline: a large backup outlasts the
		// server's write timeout, a client that stops reading does not.
		rc.SetWriteDeadline(time.Now().Add(a.httpWriteTimeout))
		if _, err := w.Write(p); err != nil {
			return err
		}
		return rc.Flush()
	}))
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	h.Set("Kvstore-Size", strconv.FormatInt(size, 10))
	h.Set("Kvstore-Checksum", fmt.Sprintf("%08x", sum))
}
