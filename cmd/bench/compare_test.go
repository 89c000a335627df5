package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// safeBuffer is a bytes.Buffer that a child process and the test may use
// at once.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func inProcessServer(name string) benchServer {
	return benchServer{name: name, start: func(context.Context) (string, func() error, error) {
		return startBaselineInProcess()
	}}
}

func compareConfig() config {
	return config{Clients: 4, Conns: 2, Requests: 200, Keys: 50, ValueSize: 16, Dist: distUniform, ZipfS: 1.1,
		Timeout: 10 * time.Second, Rounds: 3, Seed: 1}
}

// compareResult is the --json output of compare.
type compareResult struct {
	Runs    []compareRun
	Summary []compareSummary
}

// compareJSON runs compare with --json, fails the test unless it exits 0,
// and returns its parsed output and its stderr.
func compareJSON(t *testing.T, cfg config, servers []benchServer) (compareResult, string) {
	t.Helper()
	cfg.JSON = true
	var out, errOut bytes.Buffer
	if code := compare(context.Background(), cfg, servers, &out, &errOut); code != exitOK {
		t.Fatalf("exit %d, stderr %s", code, errOut.String())
	}
	var got compareResult
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	return got, errOut.String()
}

func TestCompareAlternatesServersAndPrintsRatios(t *testing.T) {
	servers := []benchServer{inProcessServer("kvstore"), inProcessServer("baseline")}
	cfg := compareConfig()
	got, _ := compareJSON(t, cfg, servers)
	// Per round: each workload on both servers, kvstore first in odd
	// rounds and the baseline first in even ones.
	var order []string
	for _, r := range got.Runs {
		order = append(order, r.Server)
		if r.OpsPerSec <= 0 || r.P50 <= 0 || r.P99 < r.P50 || r.Errors != 0 {
			t.Errorf("run %+v", r)
		}
		// Every run preloads the key space, so every get hits.
		switch hits := r.GetHitRate; {
		case r.Workload == "set only" && hits != nil:
			t.Errorf("set-only run has a get hit rate: %+v", r)
		case r.Workload != "set only" && (hits == nil || *hits != 1):
			t.Errorf("run %d, %s, %s: get hit rate %v, want 1 after the preload", r.Round, r.Workload, r.Server, hits)
		}
	}
	want := strings.Repeat("kvstore baseline ", 3) + strings.Repeat("baseline kvstore ", 3) + strings.Repeat("kvstore baseline ", 3)
	if strings.Join(order, " ") != strings.TrimSpace(want) {
		t.Errorf("order %v\nwant  %v", order, want)
	}
	if len(got.Summary) != 3 || got.Summary[0].Workload != "set:get 50:50" || got.Summary[1].Workload != "set only" ||
		got.Summary[2].Workload != "get only" {
		t.Fatalf("summary %+v", got.Summary)
	}
	for _, s := range got.Summary {
		if s.Rounds != 3 || s.ThroughputRatio <= 0 || s.P99Ratio <= 0 || s.KVP50 <= 0 || s.BaseP50 <= 0 {
			t.Errorf("summary row %+v", s)
		}
	}

	cfg.Rounds = 1
	var out, errOut bytes.Buffer
	if code := compare(context.Background(), cfg, servers, &out, &errOut); code != exitOK {
		t.Fatalf("exit %d, stderr %s", code, errOut.String())
	}
	for _, want := range []string{"round  workload", "throughput ratio", "kvstore p50", "p99 ratio", "set:get 50:50", "set only", "get only"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

// compareTitles are the titles of the plot's panels for scenarios.
func compareTitles(scenarios []compareScenario) []string {
	var titles []string
	for _, sc := range scenarios {
		titles = append(titles, sc.name+" (set:get:del "+sc.mix.String()+")")
	}
	return titles
}

func TestCompareWritesTheLatencyPlot(t *testing.T) {
	servers := []benchServer{inProcessServer("kvstore"), inProcessServer("baseline")}
	cfg := compareConfig()
	cfg.Rounds = 2
	cfg.Plot = filepath.Join(t.TempDir(), "compare.svg")
	var out, errOut bytes.Buffer
	if code := compare(context.Background(), cfg, servers, &out, &errOut); code != exitOK {
		t.Fatalf("exit %d, stderr %s", code, errOut.String())
	}
	if !strings.Contains(errOut.String(), "wrote the latency plot to "+cfg.Plot) {
		t.Errorf("stderr does not name the plot: %s", errOut.String())
	}
	data, err := os.ReadFile(cfg.Plot)
	if err != nil {
		t.Fatal(err)
	}
	head, panels := splitAtPanels(t, svgTexts(t, data), compareTitles(compareScenarios))
	for i, texts := range panels {
		// Two rounds of 200 requests, merged.
		for _, name := range []string{"kvstore", "baseline"} {
			if l := legendOf(texts, name); !strings.Contains(l, " 400 requests") {
				t.Errorf("panel %d: legend of %s %q", i, name, l)
			}
		}
	}
	if !strings.Contains(strings.Join(head, "\n"), "all 2 rounds") {
		t.Errorf("subtitle %q does not say which rounds the curves merge", head)
	}

	// By the extension: a PNG.
	cfg.Plot = filepath.Join(t.TempDir(), "compare.png")
	cfg.Rounds = 1
	if code := compare(context.Background(), cfg, servers, &out, &errOut); code != exitOK {
		t.Fatalf("exit %d, stderr %s", code, errOut.String())
	}
	f, err := os.Open(cfg.Plot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if img, err := png.DecodeConfig(f); err != nil || img.Width != 900 {
		t.Errorf("%s: %+v, %v; want a PNG 900 pixels wide", cfg.Plot, img, err)
	}

	cfg.Plot = filepath.Join(t.TempDir(), "missing", "compare.svg")
	errOut.Reset()
	if code := compare(context.Background(), cfg, servers, &out, &errOut); code != exitFailed || !strings.Contains(errOut.String(), "--plot: ") {
		t.Errorf("unwritable --plot: exit %d, stderr %s", code, errOut.String())
	}
}

func TestCompareFailsWhenAServerDoesNotStart(t *testing.T) {
	broken := benchServer{name: "kvstore", start: func(context.Context) (string, func() error, error) {
		return "", nil, errors.New("no binary")
	}}
	var out, errOut bytes.Buffer
	code := compare(context.Background(), compareConfig(), []benchServer{broken, inProcessServer("baseline")}, &out, &errOut)
	if code != exitFailed || !strings.Contains(errOut.String(), "round 1, set:get 50:50, kvstore: no binary") {
		t.Errorf("exit %d, stderr %s", code, errOut.String())
	}
}

func TestCompareRunsTheWorkloadsPicked(t *testing.T) {
	cfg, err := parseFlags([]string{"--compare", "--workloads", "get, set,get"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	// Report order, whatever the order given; each once.
	if got := cfg.scenarios(); len(got) != 2 || got[0].name != "set only" || got[1].name != "get only" {
		t.Fatalf("scenarios %+v", got)
	}
	servers := []benchServer{inProcessServer("kvstore"), inProcessServer("baseline")}
	c := compareConfig()
	c.Workloads, c.Rounds = cfg.Workloads, 2
	c.Plot = filepath.Join(t.TempDir(), "compare.svg")
	got, stderr := compareJSON(t, c, servers)
	if !strings.Contains(stderr, "2 rounds x 2 workloads") {
		t.Errorf("stderr does not announce 2 workloads: %s", stderr)
	}
	var ran []string
	for _, r := range got.Runs {
		ran = append(ran, r.Workload)
	}
	if want := "set only,set only,get only,get only,set only,set only,get only,get only"; strings.Join(ran, ",") != want {
		t.Errorf("runs %q, want %q", ran, want)
	}
	if len(got.Summary) != 2 || got.Summary[0].Workload != "set only" || got.Summary[1].Workload != "get only" {
		t.Errorf("summary %+v", got.Summary)
	}
	data, err := os.ReadFile(c.Plot)
	if err != nil {
		t.Fatal(err)
	}
	// Two panels, set only and get only; both rounds finished, and the
	// subtitle says so, not "the rounds that finished".
	texts := svgTexts(t, data)
	head, _ := splitAtPanels(t, texts, compareTitles(cfg.scenarios()))
	var titles []string
	for _, s := range texts {
		if strings.Contains(s, "(set:get:del ") {
			titles = append(titles, s)
		}
	}
	if len(titles) != 2 {
		t.Errorf("panels %q, want set only and get only", titles)
	}
	if sub := strings.Join(head, "\n"); !strings.Contains(sub, "all 2 rounds") {
		t.Errorf("subtitle %q: the plot thinks rounds are missing", sub)
	}
}

func TestSummaryTakesMediansOfPerRoundRatios(t *testing.T) {
	var runs []compareRun
	for i, r := range []struct{ kv, base float64 }{{100, 200}, {300, 300}, {50, 200}} {
		runs = append(runs,
			compareRun{Round: i + 1, Workload: "set only", Server: "kvstore", OpsPerSec: r.kv, P50: int64(r.kv), P99: int64(r.base)},
			compareRun{Round: i + 1, Workload: "set only", Server: "baseline", OpsPerSec: r.base, P50: int64(r.base), P99: int64(r.kv)})
	}
	s := summarizeRuns(runs, compareScenarios, "kvstore", "baseline")
	if len(s) != 1 {
		t.Fatalf("summary %+v", s)
	}
	// Throughput ratios 0.5, 1, 0.25: median 0.5. p99 ratios 2, 1, 4: median 2.
	// p50s are medians of each server's own: 100 and 200.
	if got := s[0]; got.ThroughputRatio != 0.5 || got.P99Ratio != 2 || got.KVOpsPerSec != 100 || got.BaseOpsPerSec != 200 ||
		got.KVP50 != 100 || got.BaseP50 != 200 || got.Rounds != 3 {
		t.Errorf("summary %+v", got)
	}
	if m := median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Errorf("median of 1..4 = %v, want 2.5", m)
	}
}

// startChild runs a real child process: this test binary, acting as
// kvstore-bench --serve-baseline (see TestMain).
func TestStartChildServesAndStopsOnSIGTERM(t *testing.T) {
	t.Setenv(childEnvVar, "1")
	// A race-enabled child otherwise sleeps a second at exit.
	t.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	t.Setenv("KVSTORE_BENCH_COMPARE", "1") // must not reach the child
	addr, err := freeLoopbackAddr()
	if err != nil {
		t.Fatal(err)
	}
	stop, err := startChild(context.Background(), "baseline", os.Args[0], []string{"--serve-baseline", addr}, addr)
	if err != nil {
		t.Fatal(err)
	}
	// The bench run below is this process, which does read it.
	os.Unsetenv("KVSTORE_BENCH_COMPARE")
	code, _, errOut := runBench(t, "--addr", addr, "--requests", "50", "--clients", "2")
	if err := stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
	if code != exitOK {
		t.Errorf("bench against the child: exit %d, stderr %s", code, errOut)
	}

	_, err = startChild(context.Background(), "baseline", os.Args[0], []string{"--serve-baseline", "256.0.0.1:1"}, addr)
	if err == nil || !strings.Contains(err.Error(), "exited at start") {
		t.Errorf("child that cannot listen: %v, want an exit at start", err)
	}
}

func TestTailBufferKeepsTheEnd(t *testing.T) {
	b := &tailBuffer{max: 5}
	b.Write([]byte("abc"))
	b.Write([]byte("defg"))
	if b.String() != "cdefg" {
		t.Errorf("got %q, want cdefg", b.String())
	}
}
