package rpc

import (
	"net/http"
	"time"

	"github.com/benbjohnson/clock"
	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"

	"kvstore/actor"
)

// Metrics is the server's Prometheus instrumentation, in a registry of its
// own (with the Go runtime and process collectors) that Handler serves.
//
// Nothing here runs on the actor's hot path with a lock: the actor, the log
// and the snapshotter keep atomic counters that a collector reads at scrape
// time (Attach), and the few per-event histograms are fed through hooks
// (ObserveBatch, ObserveSync, ObserveGroup, ObserveSnapshot) whose Observe
// is a handful of atomic adds. The gRPC interceptors and the HTTP middleware
// run on the request goroutines.
//
// gRPC calls are measured by go-grpc-middleware's Prometheus provider, so
// they carry the names and labels that the Go gRPC ecosystem's dashboards
// and alerts query (grpc_server_handled_total, grpc_server_handling_seconds,
// ...); everything else is named kvstore_*.
type Metrics struct {
	reg *prometheus.Registry
	// now is the clock the snapshot age is computed with: the one the
	// snapshotter stamps its times with.
	now func() time.Time

	grpc *grpcprom.ServerMetrics

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec

	batchCommands prometheus.Histogram
	syncDuration  prometheus.Histogram
	groupRecords  prometheus.Histogram
	snapDuration  prometheus.Histogram
	applyDuration prometheus.Histogram // registered by AttachCluster
	recovery      prometheus.Gauge
	memLimit      prometheus.Gauge
}

// latencyBuckets spans a cached read (~100µs) to a request stuck behind a
// slow disk (10s).
var latencyBuckets = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
	0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

// NewMetrics returns Metrics with its own registry, holding the Go runtime
// and process collectors and every kvstore metric that does not need
// Attach. clk (nil: the real clock) must be the snapshotter's, since the
// snapshot age is measured against the times it records.
func NewMetrics(clk clock.Clock) *Metrics {
	if clk == nil {
		clk = clock.New()
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		now: clk.Now,
		// The provider's default buckets start at 5ms, above most of
		// kvstore's calls.
		grpc: grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
			grpcprom.WithHistogramBuckets(latencyBuckets))),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kvstore_http_requests_total",
			Help: "HTTP requests completed, by route, method and status code.",
		}, []string{"route", "method", "code"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kvstore_http_request_duration_seconds",
			Help:    "Time from receiving an HTTP request to its response, by route and method.",
			Buckets: latencyBuckets,
		}, []string{"route", "method"}),
		batchCommands: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kvstore_actor_batch_commands",
			Help:    "Commands the actor took in per pass over its request queue.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12), // 1 to 2048
		}),
		syncDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kvstore_wal_fsync_duration_seconds",
			Help:    "Time taken by each fsync of a log segment file.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 16), // 50µs to 1.6s
		}),
		groupRecords: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kvstore_wal_group_commit_records",
			Help:    "Log records written per group commit.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 14), // 1 to 8192
		}),
		snapDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kvstore_snapshot_duration_seconds",
			Help:    "Time taken to write a snapshot, from the freeze until the file is durable.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 15), // 10ms to 164s
		}),
		applyDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kvstore_raft_apply_duration_seconds",
			Help:    "Time from proposing a write to applying it on the leader: a quorum's fsyncs and round trips.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16), // 100µs to 3.3s
		}),
		recovery: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kvstore_recovery_duration_seconds",
			Help: "Time the last start-up took to load the snapshot and replay the log; 0 until it is done.",
		}),
		memLimit: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kvstore_memory_limit_bytes",
			Help: "The --max-memory limit on kvstore_memory_used_bytes; 0 means none.",
		}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.grpc,
		m.httpRequests, m.httpDuration,
		m.batchCommands, m.syncDuration, m.groupRecords, m.snapDuration,
		m.recovery,
		m.memLimit,
	)
	return m
}

// Handler serves the registry in the Prometheus exposition formats, for
// GET /metrics. It also counts its own scrapes
// (promhttp_metric_handler_requests_total).
func (m *Metrics) Handler() http.Handler {
	return promhttp.InstrumentMetricHandler(m.reg, promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		Registry: m.reg,
	}))
}

// SetRecoveryDuration records how long start-up recovery took. The server
// calls it once, before it reports SERVING.
func (m *Metrics) SetRecoveryDuration(d time.Duration) { m.recovery.Set(d.Seconds()) }

// SetMemoryLimit records the --max-memory limit (0: none).
func (m *Metrics) SetMemoryLimit(bytes int64) { m.memLimit.Set(float64(bytes)) }

// ObserveBatch is the hook for actor.Config.ObserveBatch.
func (m *Metrics) ObserveBatch(commands int) { m.batchCommands.Observe(float64(commands)) }

// ObserveSync is the hook for wal.Options.ObserveSync.
func (m *Metrics) ObserveSync(d time.Duration) { m.syncDuration.Observe(d.Seconds()) }

// ObserveGroup is the hook for wal.Options.ObserveGroup.
func (m *Metrics) ObserveGroup(records int) { m.groupRecords.Observe(float64(records)) }

// ObserveSnapshot is the hook for snap.SnapshotterConfig.ObserveDuration.
func (m *Metrics) ObserveSnapshot(d time.Duration) { m.snapDuration.Observe(d.Seconds()) }

// UnaryInterceptor counts every unary RPC by method and status code and
// observes its latency (grpc_server_started_total, _handled_total,
// _handling_seconds, _msg_received_total, _msg_sent_total). Pass it to
// NewServer, which runs it outside the panic recovery so that a panic
// counts as Internal. Methods the server does not register never reach an
// interceptor, so the method label is bounded by the services served.
func (m *Metrics) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return m.grpc.UnaryServerInterceptor()
}

// StreamInterceptor is UnaryInterceptor for streaming RPCs (health Watch,
// server reflection): it also counts each stream's messages.
func (m *Metrics) StreamInterceptor() grpc.StreamServerInterceptor {
	return m.grpc.StreamServerInterceptor()
}

// HTTP wraps h so that its requests are counted by route, method and
// status code and their latency observed. route is the label: pass the
// pattern ("/v1/keys/{key}"), never anything taken from the request, so
// the number of series stays bounded. Methods outside the standard ones
// are counted as "unknown" for the same reason.
func (m *Metrics) HTTP(route string, h http.Handler) http.Handler {
	labels := prometheus.Labels{"route": route}
	return promhttp.InstrumentHandlerCounter(m.httpRequests.MustCurryWith(labels),
		promhttp.InstrumentHandlerDuration(m.httpDuration.MustCurryWith(labels), h))
}

// LogStats is what the metrics read of the log at scrape time.
type LogStats struct {
	Bytes, Records, Syncs uint64
	// Failed is whether a write or fsync has failed (writes refused).
	Failed bool
}

// SnapshotStats is what the metrics read of the snapshotter at scrape
// time: snapshots written and failed, the size of the last one (0 before
// the first) and when the newest was last known to cover all data (zero
// before that is known).
type SnapshotStats struct {
	Written, Failed uint64
	LastBytes       int64
	LastTime        time.Time
}

// Attach adds the scrape-time metrics of the actor, the log and the
// snapshotter; a nil argument is skipped. Each is read only when scraped,
// through its stats function, which must not block (atomic loads): no
// message to the actor, no lock on its path. Call it once, when the
// components exist (after recovery).
func (m *Metrics) Attach(a *actor.Actor, logStats func() LogStats, snapStats func() SnapshotStats) {
	if a != nil {
		m.reg.MustRegister(actorCollector{a})
	}
	if logStats != nil {
		m.reg.MustRegister(logCollector{logStats})
	}
	if snapStats != nil {
		m.reg.MustRegister(snapCollector{snapStats, m.now})
	}
}

var (
	keysDesc = prometheus.NewDesc("kvstore_keys",
		"Keys stored, counting expired keys that active expiry has not removed yet.", nil, nil)
	keysTTLDesc = prometheus.NewDesc("kvstore_keys_with_ttl",
		"Stored keys that have an expiry deadline.", nil, nil)
	expiredDesc = prometheus.NewDesc("kvstore_keys_expired_total",
		"Keys removed by active expiry.", nil, nil)
	queuedDesc = prometheus.NewDesc("kvstore_actor_queued_requests",
		"Requests waiting in the actor's queue.", nil, nil)
	memUsedDesc = prometheus.NewDesc("kvstore_memory_used_bytes",
		"Estimated memory of the stored data (keys, values, per-entry overhead): what --max-memory limits.", nil, nil)

	walBytesDesc = prometheus.NewDesc("kvstore_wal_written_bytes_total",
		"Bytes written to log segment files.", nil, nil)
	walRecordsDesc = prometheus.NewDesc("kvstore_wal_records_total",
		"Records written to the log.", nil, nil)
	walSyncsDesc = prometheus.NewDesc("kvstore_wal_fsyncs_total",
		"Fsyncs of log segment files.", nil, nil)
	walFailedDesc = prometheus.NewDesc("kvstore_wal_failed",
		"1 once a log write or fsync has failed: writes are refused until restart.", nil, nil)

	snapsDesc = prometheus.NewDesc("kvstore_snapshots_total",
		"Snapshots written and made durable.", nil, nil)
	snapFailuresDesc = prometheus.NewDesc("kvstore_snapshot_failures_total",
		"Snapshot attempts that failed.", nil, nil)
	snapBytesDesc = prometheus.NewDesc("kvstore_snapshot_last_size_bytes",
		"Size of the last snapshot written.", nil, nil)
	snapTimeDesc = prometheus.NewDesc("kvstore_snapshot_last_success_timestamp_seconds",
		"Unix time at which the newest snapshot was last known to cover all data.", nil, nil)
	snapAgeDesc = prometheus.NewDesc("kvstore_snapshot_age_seconds",
		"Seconds since the newest snapshot was last known to cover all data.", nil, nil)
)

// ClusterStats are a cluster node's raft gauges and counters.
type ClusterStats struct {
	Leader, HasLeader         bool
	Term                      uint64
	CommitIndex, AppliedIndex uint64
	// LastContact is seconds since a follower heard from the leader,
	// negative on the leader or before it ever has.
	LastContact                     float64
	LeaderChanges, SnapshotInstalls uint64
}

var (
	raftLeaderDesc = prometheus.NewDesc("kvstore_raft_leader",
		"1 while this node is the raft leader.", nil, nil)
	raftHasLeaderDesc = prometheus.NewDesc("kvstore_raft_has_leader",
		"1 while this node knows a leader: without one, writes and linearizable reads wait or fail.", nil, nil)
	raftTermDesc = prometheus.NewDesc("kvstore_raft_term",
		"The raft term this node is in.", nil, nil)
	raftCommitDesc = prometheus.NewDesc("kvstore_raft_commit_index",
		"Index of the last raft log entry this node knows committed.", nil, nil)
	raftAppliedDesc = prometheus.NewDesc("kvstore_raft_applied_index",
		"Index of the last raft log entry handed to this node's state machine.", nil, nil)
	raftLagDesc = prometheus.NewDesc("kvstore_raft_apply_lag_entries",
		"Committed entries this node has not applied yet: how far its stale reads are behind.", nil, nil)
	raftContactDesc = prometheus.NewDesc("kvstore_raft_last_contact_seconds",
		"Seconds since this follower last heard from the leader (absent on the leader).", nil, nil)
	raftChangesDesc = prometheus.NewDesc("kvstore_raft_leader_changes_total",
		"Leadership changes this node observed.", nil, nil)
	raftInstallsDesc = prometheus.NewDesc("kvstore_raft_snapshot_installs_total",
		"Snapshots this node installed from a leader or restored at start.", nil, nil)
)

// AttachCluster exports a cluster node's raft metrics, read from stats
// at every scrape, and kvstore_raft_apply_duration_seconds, which
// ObserveApply feeds.
func (m *Metrics) AttachCluster(stats func() ClusterStats) {
	m.reg.MustRegister(clusterCollector{stats}, m.applyDuration)
}

// ObserveApply records how long a write took from its proposal to its
// application on the leader.
func (m *Metrics) ObserveApply(d time.Duration) { m.applyDuration.Observe(d.Seconds()) }

type clusterCollector struct{ stats func() ClusterStats }

func (c clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{raftLeaderDesc, raftHasLeaderDesc, raftTermDesc, raftCommitDesc,
		raftAppliedDesc, raftLagDesc, raftContactDesc, raftChangesDesc, raftInstallsDesc} {
		ch <- d
	}
}

func (c clusterCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	gauge(raftLeaderDesc, b(st.Leader))
	gauge(raftHasLeaderDesc, b(st.HasLeader))
	gauge(raftTermDesc, float64(st.Term))
	gauge(raftCommitDesc, float64(st.CommitIndex))
	gauge(raftAppliedDesc, float64(st.AppliedIndex))
	gauge(raftLagDesc, float64(st.CommitIndex-min(st.AppliedIndex, st.CommitIndex)))
	if st.LastContact >= 0 {
		gauge(raftContactDesc, st.LastContact)
	}
	ch <- prometheus.MustNewConstMetric(raftChangesDesc, prometheus.CounterValue, float64(st.LeaderChanges))
	ch <- prometheus.MustNewConstMetric(raftInstallsDesc, prometheus.CounterValue, float64(st.SnapshotInstalls))
}

type actorCollector struct{ a *actor.Actor }

func (c actorCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- keysDesc
	ch <- keysTTLDesc
	ch <- expiredDesc
	ch <- queuedDesc
	ch <- memUsedDesc
}

func (c actorCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.a.Stats()
	ch <- prometheus.MustNewConstMetric(keysDesc, prometheus.GaugeValue, float64(st.Keys))
	ch <- prometheus.MustNewConstMetric(keysTTLDesc, prometheus.GaugeValue, float64(st.KeysWithTTL))
	ch <- prometheus.MustNewConstMetric(expiredDesc, prometheus.CounterValue, float64(st.Expired))
	ch <- prometheus.MustNewConstMetric(queuedDesc, prometheus.GaugeValue, float64(st.Queued))
	ch <- prometheus.MustNewConstMetric(memUsedDesc, prometheus.GaugeValue, float64(st.Bytes))
}

type logCollector struct{ stats func() LogStats }

func (c logCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- walBytesDesc
	ch <- walRecordsDesc
	ch <- walSyncsDesc
	ch <- walFailedDesc
}

func (c logCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	failed := 0.0
	if st.Failed {
		failed = 1
	}
	ch <- prometheus.MustNewConstMetric(walBytesDesc, prometheus.CounterValue, float64(st.Bytes))
	ch <- prometheus.MustNewConstMetric(walRecordsDesc, prometheus.CounterValue, float64(st.Records))
	ch <- prometheus.MustNewConstMetric(walSyncsDesc, prometheus.CounterValue, float64(st.Syncs))
	ch <- prometheus.MustNewConstMetric(walFailedDesc, prometheus.GaugeValue, failed)
}

type snapCollector struct {
	stats func() SnapshotStats
	now   func() time.Time
}

func (c snapCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- snapsDesc
	ch <- snapFailuresDesc
	ch <- snapBytesDesc
	ch <- snapTimeDesc
	ch <- snapAgeDesc
}

// Collect leaves out the last snapshot's size until one is written, and its
// time and age until one is known to be current, rather than report zeros
// that would read as "just now" or "empty".
func (c snapCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	ch <- prometheus.MustNewConstMetric(snapsDesc, prometheus.CounterValue, float64(st.Written))
	ch <- prometheus.MustNewConstMetric(snapFailuresDesc, prometheus.CounterValue, float64(st.Failed))
	if st.Written > 0 {
		ch <- prometheus.MustNewConstMetric(snapBytesDesc, prometheus.GaugeValue, float64(st.LastBytes))
	}
	if !st.LastTime.IsZero() {
		ch <- prometheus.MustNewConstMetric(snapTimeDesc, prometheus.GaugeValue,
			float64(st.LastTime.UnixNano())/1e9)
		ch <- prometheus.MustNewConstMetric(snapAgeDesc, prometheus.GaugeValue,
			c.now().Sub(st.LastTime).Seconds())
	}
}
