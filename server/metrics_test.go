package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	kvstorepb "kvstore/proto"
	"kvstore/wal"
)

// snapshotSignal is a slog handler that closes written when the server
// logs its first "snapshot written", which the snapshotter does after it
// has updated the counters the metrics read: the test's hand-off.
type snapshotSignal struct {
	once    *sync.Once
	written chan struct{}
}

func (h snapshotSignal) Enabled(context.Context, slog.Level) bool { return true }
func (h snapshotSignal) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h snapshotSignal) WithGroup(string) slog.Handler            { return h }
func (h snapshotSignal) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "snapshot written" {
		h.once.Do(func() { close(h.written) })
	}
	return nil
}

// exposition runs a real server, drives every front once (gRPC calls that
// succeed and fail, a health check, HTTP requests), lets one periodic
// snapshot complete, and returns GET /metrics as served.
func exposition(t *testing.T) []byte {
	t.Helper()
	mock := newMock()
	sig := snapshotSignal{once: new(sync.Once), written: make(chan struct{})}
	c := DefaultConfig()
	c.DataDir = t.TempDir()
	c.Listen = "127.0.0.1:0"
	c.RESPListen = "127.0.0.1:0"
	c.HTTPListen = "127.0.0.1:0"
	c.Fsync = wal.FsyncAlways
	c.WALPreallocBytes = 0
	c.SnapshotInterval = time.Minute
	c.RequestTimeout = 0
	c.GCHeapFloor = 0 // process-wide; TestGCFloor owns it
	c.Clock = mock
	c.Logger = slog.New(sig)
	r := startRun(t, c)
	ctx := context.Background()

	for _, req := range []*kvstorepb.SetRequest{{Key: "a", Value: "1"}, {Key: "b", Value: "2", TtlSeconds: 60}} {
		if _, err := r.kv.Set(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.kv.Set(ctx, &kvstorepb.SetRequest{Key: ""}); err == nil {
		t.Fatal("Set with an empty key succeeded")
	}
	if _, err := r.kv.Get(ctx, &kvstorepb.GetRequest{Key: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.kv.Delete(ctx, &kvstorepb.DeleteRequest{Key: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := healthpb.NewHealthClient(r.conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	base := "http://" + r.s.HTTPAddr().String()
	httpDo(t, http.MethodPut, base+"/v1/keys/c", `{"value":"3"}`)
	httpDo(t, http.MethodGet, base+"/v1/keys/c", "")

	// The snapshotter's ticker was created before Ready.
	mock.Add(c.SnapshotInterval)
	select {
	case <-sig.written:
	case <-time.After(hangGuard):
		t.Fatal("no snapshot written after its interval")
	}
	mock.Add(5 * time.Second)
	return httpDo(t, http.MethodGet, base+"/metrics", "")
}

func httpDo(t *testing.T, method, url, body string) []byte {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s = %d: %s", method, url, resp.StatusCode, b)
	}
	return b
}

// seriesNames are the names a query can select in text: a counter's or
// gauge's own name, a histogram's _bucket, _sum and _count, a summary's
// name, _sum and _count. families are the metric family names.
func seriesNames(t *testing.T, text []byte) (series, families map[string]bool) {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		t.Fatalf("parse exposition: %v", err)
	}
	series, families = map[string]bool{}, map[string]bool{}
	for name, fam := range fams {
		families[name] = true
		switch fam.GetType() {
		case dto.MetricType_HISTOGRAM:
			series[name+"_bucket"], series[name+"_sum"], series[name+"_count"] = true, true, true
		case dto.MetricType_SUMMARY:
			series[name], series[name+"_sum"], series[name+"_count"] = true, true, true
		default:
			series[name] = true
		}
	}
	return series, families
}

// TestMetricsExposition checks a real server's /metrics after traffic
// against promtool's lint, the shipped Grafana dashboard and the README.
func TestMetricsExposition(t *testing.T) {
	text := exposition(t)
	series, families := seriesNames(t, text)

	// What `promtool check metrics` runs.
	t.Run("promlint", func(t *testing.T) {
		problems, err := promlint.New(bytes.NewReader(text)).Lint()
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	})

	t.Run("dashboard", func(t *testing.T) {
		names := dashboardMetrics(t, "../docs/grafana/kvstore.json")
		if len(names) == 0 {
			t.Fatal("the dashboard queries no metric")
		}
		for _, name := range names {
			if !series[name] {
				t.Errorf("docs/grafana/kvstore.json queries %s, which the server does not export", name)
			}
		}
	})

	// The README's metrics table names exactly the kvstore_* and
	// grpc_server_* families exported.
	t.Run("readme", func(t *testing.T) {
		documented := readmeMetrics(t, "../README.md")
		for name := range families {
			if (strings.HasPrefix(name, "kvstore_") || strings.HasPrefix(name, "grpc_server_")) && !documented[name] {
				t.Errorf("%s is exported but not in README's metrics table", name)
			}
		}
		for name := range documented {
			if !families[name] {
				t.Errorf("README's metrics table lists %s, which the server does not export", name)
			}
		}
	})
}

// readmeMetrics returns the metric names in backquotes in the first
// column of the table under "### Metrics".
func readmeMetrics(t *testing.T, path string) map[string]bool {
	t.Helper()
	return readmeTable(t, path, "Metrics")
}

// readmeTable returns the metric names in backquotes in the first column
// of the table under "### heading".
func readmeTable(t *testing.T, path, heading string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n### "+heading+"\n")
	if !ok {
		t.Fatalf("README has no ### %s section", heading)
	}
	section, _, _ = strings.Cut(section, "\n### ")
	section, _, _ = strings.Cut(section, "\n## ")
	name := regexp.MustCompile("`([a-z_:][a-z0-9_:]*)[{`]")
	names := map[string]bool{}
	for line := range strings.SplitSeq(section, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 3 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`") {
			continue
		}
		for _, m := range name.FindAllStringSubmatch(cells[1], -1) {
			names[m[1]] = true
		}
	}
	if len(names) == 0 {
		t.Fatal("README's metrics table names no metric")
	}
	return names
}

// dashboard is the part of a Grafana dashboard the test reads.
type dashboard struct {
	SchemaVersion int     `json:"schemaVersion"`
	UID           string  `json:"uid"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Type  string          `json:"type"`
			Name  string          `json:"name"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int             `json:"id"`
	Type       string          `json:"type"`
	Title      string          `json:"title"`
	Datasource *datasourceRef  `json:"datasource"`
	Panels     []panel         `json:"panels"` // a collapsed row's
	Targets    []panelTarget   `json:"targets"`
	GridPos    json.RawMessage `json:"gridPos"`
}

type panelTarget struct {
	Datasource *datasourceRef `json:"datasource"`
	Expr       string         `json:"expr"`
	RefID      string         `json:"refId"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// dashboardMetrics parses the dashboard at path, checks its shape (a
// Prometheus datasource variable that every panel and query uses, unique
// panel ids) and returns the metric names its queries and variables use.
func dashboardMetrics(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if d.SchemaVersion < 39 || d.UID == "" {
		t.Errorf("schemaVersion %d, uid %q: want a current schema (39 or later, Grafana 11) and a uid", d.SchemaVersion, d.UID)
	}
	names := map[string]bool{}
	hasDatasource := false
	labelValues := regexp.MustCompile(`label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*[{,]`)
	for _, v := range d.Templating.List {
		switch v.Type {
		case "datasource":
			hasDatasource = v.Name == "datasource" && string(v.Query) == `"prometheus"`
		case "query":
			var q struct {
				Query string `json:"query"`
			}
			if err := json.Unmarshal(v.Query, &q); err != nil {
				t.Fatalf("variable %s: %v", v.Name, err)
			}
			m := labelValues.FindStringSubmatch(q.Query)
			if m == nil {
				t.Errorf("variable %s: query %q is not label_values(METRIC..., LABEL)", v.Name, q.Query)
				continue
			}
			names[m[1]] = true
		}
	}
	if !hasDatasource {
		t.Error(`no datasource variable "datasource" of type prometheus`)
	}
	ids := map[int]bool{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if ids[p.ID] || p.ID == 0 {
				t.Errorf("panel %q: id %d is zero or used twice", p.Title, p.ID)
			}
			ids[p.ID] = true
			if len(p.GridPos) == 0 {
				t.Errorf("panel %q has no gridPos", p.Title)
			}
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q does not use the datasource variable", p.Title)
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				if tg.Datasource == nil || tg.Datasource.UID != "${datasource}" || tg.RefID == "" {
					t.Errorf("panel %q, query %q: want the datasource variable and a refId", p.Title, tg.Expr)
				}
				found, err := promqlMetricNames(tg.Expr)
				if err != nil {
					t.Errorf("panel %q: %v", p.Title, err)
				}
				if len(found) == 0 {
					t.Errorf("panel %q: query %q selects no metric", p.Title, tg.Expr)
				}
				for _, n := range found {
					names[n] = true
				}
			}
		}
	}
	walk(d.Panels)
	out := make([]string, 0, len(names))
	for n := range names {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

var (
	// Removed before looking for names, in this order: string literals
	// (label values), Grafana variables, label matchers, range and
	// subquery brackets, grouping clauses with their label lists, and
	// number and duration literals.
	promqlStrip = []*regexp.Regexp{
		regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`"),
		regexp.MustCompile(`\$\{?\w+\}?`),
		regexp.MustCompile(`\{[^{}]*\}`),
		regexp.MustCompile(`\[[^\]]*\]`),
		regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`),
		regexp.MustCompile(`\b\d[0-9a-zA-Z.]*`),
	}
	promqlName = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?`)
	// promqlKeywords are the words left that are not names: binary
	// operators, modifiers and float literals.
	promqlKeywords = []string{"and", "or", "unless", "bool", "offset", "group_left", "group_right", "inf", "nan"}
	// promqlFunctions are the aggregations and functions a dashboard
	// query may call; anything else followed by "(" is a typo.
	promqlFunctions = []string{
		"abs", "absent", "avg", "avg_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min",
		"count", "count_over_time", "delta", "deriv", "floor", "histogram_quantile", "increase",
		"irate", "label_replace", "max", "max_over_time", "min", "min_over_time", "quantile",
		"rate", "resets", "round", "scalar", "sort", "sort_desc", "sum", "sum_over_time", "time",
		"timestamp", "topk", "bottomk", "vector",
	}
)

// promqlMetricNames returns the metric names that expr selects: the
// identifiers left once strings, variables, label matchers, ranges,
// grouping labels and numbers are removed, less functions and keywords.
// It reports a call to a function it does not know.
func promqlMetricNames(expr string) ([]string, error) {
	for _, re := range promqlStrip {
		expr = re.ReplaceAllString(expr, " ")
	}
	var names []string
	for _, m := range promqlName.FindAllString(expr, -1) {
		if ident, ok := strings.CutSuffix(m, "("); ok {
			ident = strings.TrimSpace(ident)
			if !slices.Contains(promqlFunctions, ident) {
				return nil, fmt.Errorf("unknown PromQL function %s", ident)
			}
			continue
		}
		if slices.Contains(promqlKeywords, strings.ToLower(m)) || slices.Contains(names, m) {
			continue
		}
		names = append(names, m)
	}
	return names, nil
}

func TestPromQLMetricNames(t *testing.T) {
	for _, c := range []struct {
		expr string
		want []string
		err  string
	}{
		{`kvstore_keys`, []string{"kvstore_keys"}, ""},
		{`kvstore_keys{job=~"$job", instance="a{b}"}`, []string{"kvstore_keys"}, ""},
		{`histogram_quantile(0.99, sum by (grpc_method, le) (rate(grpc_server_handling_seconds_bucket{grpc_type="unary"}[$__rate_interval])))`,
			[]string{"grpc_server_handling_seconds_bucket"}, ""},
		{`sum(rate(a_total[5m])) by (code) / ignoring(code) group_left sum(rate(b_total[1h30m] offset 5m))`,
			[]string{"a_total", "b_total"}, ""},
		{`x > 0 and on (instance) y unless z == bool 1e3 or NaN`, []string{"x", "y", "z"}, ""},
		{`max(kvstore_wal_failed{job=~"${job}"}) - scalar(w)`, []string{"kvstore_wal_failed", "w"}, ""},
		{`rat(kvstore_keys[5m])`, nil, "unknown PromQL function rat"},
		{`sum by (le) ("just a string")`, nil, ""},
	} {
		got, err := promqlMetricNames(c.expr)
		if (err == nil) != (c.err == "") || (err != nil && err.Error() != c.err) {
			t.Errorf("%s: error %v, want %q", c.expr, err, c.err)
			continue
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: %q, want %q", c.expr, got, c.want)
		}
	}
}
