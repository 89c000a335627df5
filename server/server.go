package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/benbjohnson/clock"
	"github.com/oklog/run"

	"kvstore/actor"
	"kvstore/rpc"
	"kvstore/snap"
	"kvstore/wal"
	"kvstore/wal/actorlog"
)

// ErrRunTwice is returned by Run when it is called a second time: a Server
// runs once.
var ErrRunTwice = errors.New("server: Run called twice")

// Server is one kvstore node: the data-dir lock, recovery, the owner
// goroutine, the log writer, the snapshot goroutine and the network fronts,
// with one lifetime. New checks the configuration; Run serves until Close,
// its context's end or (with Config.HandleSignals) SIGINT/SIGTERM, then
// shuts down in order.
type Server struct {
	cfg    Config
	log    *slog.Logger
	clock  clock.Clock
	fs     wal.FS
	stdout io.Writer
	sec    security

	started  atomic.Bool
	stopc    chan struct{} // closed by Close
	stopOnce sync.Once
	ready    chan struct{} // closed once SERVING
	done     chan struct{} // closed when Run has returned

	// Set by Run before ready is closed.
	addr, httpAddr net.Addr
	respAddr       net.Addr
}

// New checks cfg and loads the TLS files and tokens it names. Nothing is
// listened on or read from the data dir until Run.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sec, err := loadSecurity(&cfg)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:    cfg,
		log:    cfg.logger(),
		clock:  cfg.Clock,
		fs:     cfg.fs,
		stdout: cfg.Stdout,
		sec:    sec,
		stopc:  make(chan struct{}),
		ready:  make(chan struct{}),
		done:   make(chan struct{}),
	}
	if s.clock == nil {
		s.clock = clock.New()
	}
	if s.fs == nil {
		s.fs = wal.OS
	}
	if s.stdout == nil {
		s.stdout = io.Discard
	}
	return s, nil
}

// Ready is closed once the server has recovered its data, accepts
// requests and reports SERVING.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Done is closed once Run has returned.
func (s *Server) Done() <-chan struct{} { return s.done }

// Addr is the address the gRPC server listens on; valid once Ready is
// closed.
func (s *Server) Addr() net.Addr { return s.addr }

// HTTPAddr is the address HTTP is served on: --http-listen's when it is
// set, else Addr (the port serves both); valid once Ready is closed.
func (s *Server) HTTPAddr() net.Addr { return s.httpAddr }

// RESPAddr is the Redis front's address once Ready, nil without one
// (--resp-listen empty, or cluster mode).
func (s *Server) RESPAddr() net.Addr { return s.respAddr }

// Close starts an orderly shutdown and, if Run is running, waits for it to
// return. It is idempotent and safe from any goroutine.
func (s *Server) Close() error {
	s.stopOnce.Do(func() { close(s.stopc) })
	if s.started.Load() {
		<-s.done
	}
	return nil
}

// Reload re-reads the TLS certificate and the token file, as SIGHUP does;
// a file that fails to load is logged and the old one stays in force.
func (s *Server) Reload() { s.sec.reload(s.log) }

// Run starts the server and blocks until it has shut down in order. A
// clean shutdown returns nil, also one asked for during recovery. Run may
// be called once.
func (s *Server) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return ErrRunTwice
	}
	defer close(s.done)
	c, log := &s.cfg, s.log

	// Lock first: a second server on the same dir must fail before it
	// claims a port or prints that it is starting.
	lock, err := wal.LockDir(c.DataDir)
	if err != nil {
		return err
	}
	defer lock.Release()

	// Signals are caught from here on, so SIGTERM during a long recovery
	// stops it cleanly.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var sig atomic.Value // os.Signal that stopped the server, if any
	stopSignals := s.watch(ctx, cancel, &sig)
	defer stopSignals()

	_, stopGC := startGCFloor(uint64(c.GCHeapFloor))
	defer stopGC()
	_, port, _ := net.SplitHostPort(c.Listen)
	fmt.Fprintf(s.stdout, "gRPC server starting on port %s...\n", port)

	metrics := rpc.NewMetrics(s.clock)
	metrics.SetMemoryLimit(int64(c.MaxMemory))
	svc := rpc.NewService(nil, rpc.Options{
		MaxKeyBytes:    int(c.MaxKeyBytes),
		MaxValueBytes:  int(c.MaxValueBytes),
		Clock:          s.clock,
		Logger:         log,
		RequestTimeout: c.RequestTimeout,
	})
	admin := rpc.NewAdmin(s.clock)
	fr, err := listenFronts(c, svc, admin, metrics, s.sec, log, s.clock)
	if err != nil {
		return err
	}
	s.addr, s.httpAddr, s.respAddr = fr.addr(), fr.httpAddr(), fr.respAddr()
	// Serving starts before recovery so health checks get an answer
	// (NOT_SERVING) while the data loads; KVStore calls are Unavailable
	// until the actor is attached.
	fr.serve()
	if c.RaftListen != "" {
		return s.runCluster(ctx, cancel, fr, svc, admin, metrics)
	}

	// Once the log fails, writes are refused until a restart: health
	// says so at once, before the first refused caller hears it, while
	// reads go on.
	refuseWrites := func(error) { fr.grpc.RefuseWrites() }
	st, err := recoverStorage(ctx, s.fs, c, s.clock, log, metrics, refuseWrites)
	if err != nil {
		fr.stop()
		if ctx.Err() != nil {
			log.Info("shutdown during recovery", "signal", signalName(&sig))
			return nil
		}
		return err
	}
	a := actor.New(actor.Config{
		State:          st.state,
		Seq:            st.seq,
		Log:            actorlog.New(st.log),
		Clock:          s.clock,
		ExpireInterval: c.ExpireInterval,
		ObserveBatch:   metrics.ObserveBatch,
		Rules:          c.rules(),
	})
	st.state = nil // the actor owns it now
	snaps, err := st.snapshotter(s.fs, a, c, s.clock, log, metrics)
	if err != nil {
		a.Stop()
		st.close(log)
		fr.stop()
		return err
	}
	metrics.Attach(a, logStats(st.log), snapshotStats(snaps))
	svc.Attach(a)
	fr.attach(a)
	admin.Attach(&adminBackend{actor: a, snaps: snaps, log: st.log, fs: s.fs, cfg: c, clock: s.clock})
	fr.grpc.SetServing()

	fmt.Fprintf(s.stdout, "Key-Value Store gRPC server is running on port %s\n", strconv.Itoa(s.addr.(*net.TCPAddr).Port))
	fmt.Fprintf(s.stdout, "Press Ctrl+C to stop the server\n")
	log.Info("serving", "grpc", s.addr.String(), "http", addrString(s.httpAddr), "redis", addrString(s.respAddr), "data_dir", c.DataDir, "fsync", c.Fsync.String())
	close(s.ready)

	// Interrupts run in the order added, each returning once its
	// component has stopped: drain requests, final snapshot (the actor
	// still answers it), stop the actor, then flush and close the log.
	var g run.Group
	g.Add(func() error { <-ctx.Done(); return nil }, func(error) { cancel() })
	g.Add(s.frontsUnit(fr))
	g.Add(s.snapshotterUnit(snaps))
	g.Add(actorUnit(a))
	var closeErr error
	g.Add(logUnit(st, log, &closeErr))
	err = g.Run()
	if closeErr != nil {
		return fmt.Errorf("close log: %w", closeErr)
	}
	if err != nil {
		return err
	}
	log.Info("shutdown complete", "signal", signalName(&sig))
	return nil
}

// watch turns the server's stop conditions into ctx's cancellation: Close,
// and with HandleSignals the first SIGINT or SIGTERM (after which the
// default action is back, so a second signal kills the process). SIGHUP
// reloads. The returned function stops watching and waits until it has.
func (s *Server) watch(ctx context.Context, cancel context.CancelFunc, sig *atomic.Value) (stop func()) {
	var termc, hupc chan os.Signal
	if s.cfg.HandleSignals {
		termc = make(chan os.Signal, 1)
		signal.Notify(termc, syscall.SIGINT, syscall.SIGTERM)
		// Always caught: SIGHUP's default action is to exit, and an
		// operator sending it means "reload", even with nothing to reload.
		hupc = make(chan os.Signal, 1)
		signal.Notify(hupc, syscall.SIGHUP)
	}
	quit, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		stopc, done := s.stopc, ctx.Done()
		for {
			select {
			case v := <-termc:
				sig.Store(v)
				s.log.Info("shutting down", "signal", v.String())
				cancel()
			case <-hupc:
				s.Reload()
			case <-stopc:
				stopc = nil
				cancel()
			case <-done:
				// Shutting down, whatever the reason: from now on
				// SIGINT and SIGTERM kill at once. SIGHUP still reloads.
				done = nil
				if termc != nil {
					signal.Stop(termc)
					termc = nil
				}
			case <-quit:
				return
			}
		}
	}()
	return func() {
		close(quit)
		<-stopped // termc is ours again
		if termc != nil {
			signal.Stop(termc)
		}
		if hupc != nil {
			signal.Stop(hupc)
		}
	}
}

func signalName(sig *atomic.Value) string {
	if v, ok := sig.Load().(os.Signal); ok {
		return v.String()
	}
	return "none"
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// frontsUnit serves until a front fails; its interrupt drains in-flight
// requests for up to ShutdownGrace, then cancels the rest.
func (s *Server) frontsUnit(fr *fronts) (func() error, func(error)) {
	return fr.wait, func(error) {
		s.log.Info("shutting down: draining in-flight requests", "grace", s.cfg.ShutdownGrace)
		ctx, cancel := s.clock.WithTimeout(context.Background(), s.cfg.ShutdownGrace)
		defer cancel()
		fr.shutdown(ctx)
	}
}

// snapshotterUnit runs periodic snapshots; its interrupt stops them and
// writes the final one, unless NoFinalSnapshot.
func (s *Server) snapshotterUnit(snaps *snap.Snapshotter) (func() error, func(error)) {
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	return func() error {
			defer close(stopped)
			return snaps.Run(ctx)
		}, func(error) {
			cancel()
			<-stopped
			if s.cfg.NoFinalSnapshot {
				return
			}
			if _, err := snaps.Snapshot(context.Background()); err != nil {
				s.log.Error("final snapshot failed; the log still holds every acknowledged write", "err", err)
			}
		}
}

// actorUnit stops the owner goroutine on interrupt.
func actorUnit(a *actor.Actor) (func() error, func(error)) {
	stopped := make(chan struct{})
	return func() error {
			<-stopped
			return nil
		}, func(error) {
			a.Stop()
			close(stopped)
		}
}

// logUnit flushes, fsyncs and closes the log on interrupt, reporting a
// failure through closeErr.
func logUnit(st *storage, log *slog.Logger, closeErr *error) (func() error, func(error)) {
	closed := make(chan struct{})
	return func() error {
			<-closed
			return nil
		}, func(error) {
			if *closeErr = st.close(log); *closeErr != nil {
				log.Error("closing the log failed", "err", *closeErr)
			}
			close(closed)
		}
}
