package server

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/benbjohnson/clock"

	"kvstore/actor"
	"kvstore/rpc"
	"kvstore/wal"
)

// Defaults of Config, as DefaultConfig sets them.
const (
	DefaultListen           = "localhost:50051"
	DefaultHTTPListen       = ""
	DefaultRESPListen       = "localhost:6380"
	DefaultDataDir          = "./data"
	DefaultSnapshotInterval = 30 * time.Second
	DefaultShutdownGrace    = 10 * time.Second
	DefaultMaxConnections   = 4096
	DefaultRequestTimeout   = 30 * time.Second
	// DefaultGCHeapFloor is the heap size below which the garbage
	// collector does not start a cycle (see gcFloor).
	DefaultGCHeapFloor = 64 << 20
)

// Config is every setting of a server. Start from DefaultConfig: the zero
// value is not a usable configuration. cmd/server fills it from flags, the
// environment and a config file; a Go program embedding kvstore sets the
// fields it cares about.
type Config struct {
	// Listen is the address of gRPC and HTTP (REST, health, metrics),
	// which share the port ("127.0.0.1:0" picks a free one; see
	// Server.Addr). HTTPListen, when set, serves HTTP on a port of its
	// own as well. Pprof serves /debug/pprof/ on HTTP.
	Listen     string
	HTTPListen string
	Pprof      bool
	// RESPListen is the address of the Redis-protocol front (package
	// redisfront); "" disables it. Single-node mode only, for now.
	RESPListen string

	// DataDir holds the log (wal/), the snapshots (snap/) and the LOCK
	// file; it is created if missing.
	DataDir string
	// Fsync is the log's durability policy.
	Fsync wal.FsyncPolicy
	// WALSegmentBytes is the size at which the log starts a new segment;
	// WALPreallocBytes how far ahead of its records it zero-fills the
	// active one (0: off).
	WALSegmentBytes  ByteSize
	WALPreallocBytes ByteSize
	// SnapshotInterval is the period of snapshots; 0 disables periodic
	// ones. NoFinalSnapshot skips the snapshot at shutdown.
	SnapshotInterval time.Duration
	NoFinalSnapshot  bool
	// ExpireInterval is how often active expiry runs.
	ExpireInterval time.Duration

	// MaxKeyBytes and MaxValueBytes bound keys and values on every front.
	// Together they must fit one log record and one snapshot entry.
	MaxKeyBytes   ByteSize
	MaxValueBytes ByteSize
	// MaxMemory bounds the estimated memory of the data; 0 is no limit.
	MaxMemory ByteSize
	// MaxConnections bounds the open connections of each listener.
	MaxConnections int
	// RequestTimeout bounds every request on the server, whatever the
	// client's deadline; 0 is none.
	RequestTimeout time.Duration
	// ShutdownGrace is how long shutdown waits for in-flight requests.
	ShutdownGrace time.Duration
	// GCHeapFloor is the heap size below which the garbage collector does
	// not start a cycle; 0 leaves it to GOGC alone. It is process-wide:
	// an embedding program that tunes the collector itself sets 0.
	GCHeapFloor ByteSize

	// TLSCert and TLSKey (PEM files) put gRPC and HTTP behind TLS;
	// TLSClientCA also requires client certificates signed by it.
	TLSCert, TLSKey, TLSClientCA string
	// AuthFile holds the bearer tokens with their roles; empty turns
	// authentication off.
	AuthFile string
	// MetricsOpen serves /metrics without a token when AuthFile is set.
	MetricsOpen bool
	// Insecure lets a non-loopback listener run without auth or TLS.
	Insecure bool

	// LogLevel and LogFormat ("text" or "json") shape the logger built
	// when Logger is nil.
	LogLevel  slog.Level
	LogFormat string
	// Logger receives the server's structured logs; nil logs to stderr per
	// LogFormat and LogLevel.
	Logger *slog.Logger
	// Stdout receives the start-up banner; nil discards it.
	Stdout io.Writer
	// Clock drives expiry, TTLs and snapshots; nil is the real clock.
	// Tests inject a mock.
	Clock clock.Clock
	// HandleSignals makes Run shut down on SIGINT and SIGTERM (a second
	// signal then kills the process) and reload TLS files and tokens on
	// SIGHUP. Off, the embedding program calls Close and Reload itself.
	HandleSignals bool

	// RaftListen turns cluster mode on: raft's transport listens there,
	// and the raft log (in DataDir/raft) replaces the wal and snapshots.
	// NodeID names this node in the cluster; RaftAdvertise is the raft
	// address the other nodes dial (default: RaftListen).
	// InitialCluster ("n1=host:port,n2=host:port,...", IDs to raft
	// addresses) bootstraps a new cluster; it is ignored once the data
	// dir holds cluster state.
	NodeID         string
	RaftListen     string
	RaftAdvertise  string
	InitialCluster string
	// Join is the client address of a running cluster's node: a node
	// without cluster state asks it to add this node, as a voter or,
	// with JoinAs "nonvoter", as a read replica.
	Join   string
	JoinAs string
	// PeerTokenFile holds the admin token (kvstore-server token new
	// --role admin) this node presents to the others for its own calls:
	// --join, and publishing its client address. Needed when the
	// cluster's nodes run with --auth-file.
	PeerTokenFile string
	// RaftPeerAddrs ("n2=host:port,...") are addresses to dial some
	// nodes' raft ports at instead of their configured raft addresses:
	// behind a NAT or a proxy (the partition tests put one per pair of
	// nodes).
	RaftPeerAddrs string

	// fs is the file system of the data dir, nil for the OS; tests put
	// recovery on a fault-injecting one.
	fs wal.FS
}

// DefaultConfig returns the configuration kvstore-server runs with when
// no flag is given.
func DefaultConfig() Config {
	return Config{
		Listen:           DefaultListen,
		HTTPListen:       DefaultHTTPListen,
		RESPListen:       DefaultRESPListen,
		DataDir:          DefaultDataDir,
		Fsync:            wal.FsyncAlways,
		WALSegmentBytes:  wal.DefaultSegmentBytes,
		WALPreallocBytes: wal.DefaultPreallocBytes,
		SnapshotInterval: DefaultSnapshotInterval,
		ExpireInterval:   actor.DefaultExpireInterval,
		MaxKeyBytes:      rpc.DefaultMaxKeyBytes,
		MaxValueBytes:    rpc.DefaultMaxValueBytes,
		MaxConnections:   DefaultMaxConnections,
		RequestTimeout:   DefaultRequestTimeout,
		ShutdownGrace:    DefaultShutdownGrace,
		GCHeapFloor:      DefaultGCHeapFloor,
		LogLevel:         slog.LevelInfo,
		LogFormat:        "text",
	}
}

// Validate reports the first setting that cannot work, naming it as the
// flag that sets it. Every numeric setting must lie in its range (see
// settingRanges; README lists them).
func (c *Config) Validate() error {
	switch {
	case c.Listen == "":
		return errors.New("--listen must not be empty")
	case c.DataDir == "":
		return errors.New("--data-dir must not be empty")
	case c.LogFormat != "text" && c.LogFormat != "json":
		return fmt.Errorf("--log-format must be text or json, got %q", c.LogFormat)
	case (c.TLSCert == "") != (c.TLSKey == ""):
		return errors.New("--tls-cert and --tls-key go together")
	case c.TLSClientCA != "" && c.TLSCert == "":
		return errors.New("--tls-client-ca needs --tls-cert and --tls-key")
	case c.RaftListen == "" && (c.NodeID != "" || c.RaftAdvertise != "" || c.InitialCluster != "" || c.Join != "" || c.PeerTokenFile != "" || c.RaftPeerAddrs != ""):
		return errors.New("--node-id, --raft-advertise, --initial-cluster, --join, --peer-token-file and --raft-peer-addrs need --raft-listen (cluster mode)")
	case c.Join != "" && c.InitialCluster != "":
		return errors.New("--join and --initial-cluster exclude each other: a node starts a new cluster or joins a running one")
	case c.JoinAs != "" && c.JoinAs != "voter" && c.JoinAs != "nonvoter":
		return fmt.Errorf("--join-as must be voter or nonvoter, got %q", c.JoinAs)
	case c.RaftListen != "" && c.NodeID == "":
		return errors.New("--raft-listen needs --node-id, this node's name in the cluster")
	case c.RaftListen != "" && c.TLSCert != "" && c.TLSClientCA == "":
		return errors.New("--raft-listen with --tls-cert needs --tls-client-ca: nodes use mutual TLS with certificates it signs, for raft and for forwarding")
	}
	if c.InitialCluster != "" {
		servers, err := parseInitialCluster(c.InitialCluster)
		if err != nil {
			return err
		}
		if _, ok := servers[c.NodeID]; !ok {
			return fmt.Errorf("--initial-cluster does not list --node-id %q", c.NodeID)
		}
	}
	for _, r := range settingRanges {
		if err := r.check(r.get(c)); err != nil {
			return err
		}
	}
	if err := checkStorable(int(c.MaxKeyBytes), int(c.MaxValueBytes)); err != nil {
		return fmt.Errorf("--max-key-bytes %d with --max-value-bytes %d: %w: lower --max-value-bytes", c.MaxKeyBytes, c.MaxValueBytes, err)
	}
	return c.checkProtected()
}

// logger returns the logger the config asks for.
func (c *Config) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return newLogger(os.Stderr, c)
}

// newLogger returns the logger LogFormat and LogLevel ask for, writing to w.
func newLogger(w io.Writer, c *Config) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// rules are the actor's limits: the ones the fronts check, which Validate
// made sure the log and snapshots can hold.
func (c *Config) rules() actor.Rules {
	return actor.Rules{
		MaxKeyBytes:   int(c.MaxKeyBytes),
		MaxValueBytes: int(c.MaxValueBytes),
		MaxMemory:     int64(c.MaxMemory),
	}
}
