package main

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
)

func TestFormatLatency(t *testing.T) {
	for ns, want := range map[int64]string{
		0:                "0ns",
		850:              "850ns",
		999:              "999ns",
		1_000:            "1.00µs",
		12_345:           "12.3µs",
		123_456:          "123µs",
		999_499:          "999µs",
		999_500:          "1.00ms",
		1_250_000:        "1.25ms",
		45_670_000:       "45.7ms",
		999_600_000:      "1.00s",
		2_100_000_000:    "2.10s",
		int64(time.Hour): "3600s",
	} {
		if got := formatLatency(ns); got != want {
			t.Errorf("formatLatency(%d) = %q, want %q", ns, got, want)
		}
	}
}

// The percentiles come from the HDR histogram: exact to 3 significant
// digits.
func TestPercentilesOfKnownLatencies(t *testing.T) {
	o := newOpResult()
	for i := int64(1); i <= 1000; i++ {
		o.hist.RecordValue(i * 1000) // 1µs .. 1ms
	}
	o.errs[codes.Unavailable] = 3
	r := summarize("get", &o, 2)
	for _, c := range []struct {
		name      string
		got, want int64
	}{{"p50", r.P50, 500_000}, {"p90", r.P90, 900_000}, {"p99", r.P99, 990_000}, {"p99.9", r.P999, 999_000}, {"max", r.Max, 1_000_000}} {
		if !o.hist.ValuesAreEquivalent(c.got, c.want) {
			t.Errorf("%s = %d, want %d to 3 significant digits", c.name, c.got, c.want)
		}
	}
	if r.Count != 1000 || r.OpsPerSec != 500 || r.Errors != 3 || r.ByCode["Unavailable"] != 3 {
		t.Errorf("summary %+v; want 1000 ok at 500/s, 3 Unavailable", r)
	}

	empty := newOpResult()
	if r := summarize("set", &empty, 1); r.P99 != 0 || r.Max != 0 || r.OpsPerSec != 0 {
		t.Errorf("empty summary %+v, want zeros", r)
	}
}

func TestLatencyIsClampedToTheHistogramRange(t *testing.T) {
	rec := newRecorder(1)
	rec.record(0, opGet, 0, true, nil)
	rec.record(0, opGet, 2*time.Hour, true, nil)
	res := rec.result()
	h := res.ops[opGet].hist
	if h.TotalCount() != 2 || !h.ValuesAreEquivalent(h.Max(), histMax) {
		t.Errorf("count %d, max %d; want both recorded, the slow one as %d", h.TotalCount(), h.Max(), histMax)
	}
}

func TestTableHasARowPerOpAndATotal(t *testing.T) {
	rec := newRecorder(2)
	for i := range 100 {
		rec.record(i, opSet, time.Duration(i+1)*time.Microsecond, false, nil)
		rec.record(i, opGet, time.Millisecond, i%4 == 0, nil)
	}
	res := rec.result()
	res.elapsed = time.Second
	cfg := config{Mix: mix{1, 1, 0}, Clients: 2, Conns: 1, Keys: 10, ValueSize: 16, Dist: distUniform}
	rep := newReport(cfg, &res)
	if len(rep.Ops) != 2 {
		t.Fatalf("ops %v: del has no weight and no requests and should be left out", rep.Ops)
	}
	var b strings.Builder
	rep.writeTable(&b)
	lines := strings.Split(b.String(), "\n")
	header := strings.Fields(lines[0])
	if strings.Join(header, " ") != "op count ops/s p50 p90 p99 p99.9 max errors" {
		t.Errorf("header %q", lines[0])
	}
	for i, want := range []string{"set 100 100 ", "get 100 100 1.00ms", "total 200 200 "} {
		if got := strings.Join(strings.Fields(lines[i+1]), " "); !strings.HasPrefix(got, want) {
			t.Errorf("row %d %q, want prefix %q", i+1, got, want)
		}
	}
	if !strings.Contains(b.String(), "get hit rate 25.0%") {
		t.Errorf("table lacks the get hit rate:\n%s", b.String())
	}
}

func TestOpenLoopTableSaysWhenTheRateWasNotMet(t *testing.T) {
	rec := newRecorder(1)
	rec.record(0, opSet, time.Millisecond, false, nil)
	res := rec.result()
	res.elapsed, res.rate, res.scheduled, res.missed = time.Second, 1000, 1, 999
	rep := newReport(config{Mix: mix{1, 0, 0}}, &res)
	var b strings.Builder
	rep.writeTable(&b)
	if !strings.Contains(b.String(), "RATE NOT MET: 999 requests") || *rep.RateMet || rep.Loop != "open" {
		t.Errorf("report %+v, table:\n%s", rep, b.String())
	}
}

func TestFormatCodesIsSortedByName(t *testing.T) {
	got := formatCodes(map[codes.Code]int64{codes.Unavailable: 5, codes.DeadlineExceeded: 2, codes.Canceled: 1})
	if want := "Canceled=1 DeadlineExceeded=2 Unavailable=5"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
