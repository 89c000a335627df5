package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"google.golang.org/grpc/codes"
)

// opReport is the summary of one op (or of all of them) over a run.
// Latencies are of successful requests, in nanoseconds; failed requests
// count in errors only.
type opReport struct {
	Op        string           `json:"op"`
	Count     int64            `json:"count"`
	OpsPerSec float64          `json:"ops_per_sec"`
	P50       int64            `json:"p50_ns"`
	P90       int64            `json:"p90_ns"`
	P99       int64            `json:"p99_ns"`
	P999      int64            `json:"p99_9_ns"`
	Max       int64            `json:"max_ns"`
	Found     int64            `json:"found"` // get: hits; del: keys removed
	Errors    int64            `json:"errors"`
	ByCode    map[string]int64 `json:"errors_by_code,omitempty"`
}

// report is what --json prints: the run's parameters and its numbers.
type report struct {
	Mode        string     `json:"mode"`           // "grpc" (kvstore's API), "etcd" (etcd's KV API), "redis" (RESP) or "inproc"
	Addr        string     `json:"addr,omitempty"` // --addr: one address or a comma-separated list
	Clients     int        `json:"clients"`
	Conns       int        `json:"conns,omitempty"` // connections opened: --conns, at least one per address
	Loop        string     `json:"loop"`            // "closed" or "open"
	TargetRate  float64    `json:"target_rate,omitempty"`
	Keys        int        `json:"keys"`
	ValueSize   int        `json:"value_size"`
	Mix         string     `json:"mix"`
	Dist        string     `json:"dist"`
	TTLSeconds  int64      `json:"ttl_seconds,omitempty"`
	TTLFraction float64    `json:"ttl_fraction,omitempty"`
	Elapsed     float64    `json:"elapsed_seconds"`
	Ops         []opReport `json:"ops"`
	Total       opReport   `json:"total"`
	// Open loop only.
	Scheduled   int64 `json:"scheduled,omitempty"`
	Missed      int64 `json:"missed,omitempty"`
	RateMet     *bool `json:"rate_met,omitempty"`
	Interrupted bool  `json:"interrupted,omitempty"`
	// Unreachable is the last error when --give-up stopped the run.
	Unreachable string `json:"unreachable,omitempty"`
}

func summarize(name string, o *opResult, seconds float64) opReport {
	h := o.hist
	r := opReport{
		Op:     name,
		Count:  h.TotalCount(),
		P50:    h.ValueAtQuantile(50),
		P90:    h.ValueAtQuantile(90),
		P99:    h.ValueAtQuantile(99),
		P999:   h.ValueAtQuantile(99.9),
		Found:  o.found,
		Errors: o.failed(),
	}
	if r.Count > 0 {
		r.Max = h.Max()
	}
	if seconds > 0 {
		r.OpsPerSec = float64(r.Count) / seconds
	}
	if len(o.errs) > 0 {
		r.ByCode = map[string]int64{}
		for c, n := range o.errs {
			r.ByCode[c.String()] = n
		}
	}
	return r
}

// newReport summarizes res; ops with no weight in the mix and no requests
// are left out.
func newReport(cfg config, res *result) report {
	rep := report{
		Mode:      "grpc",
		Addr:      cfg.Addr,
		Clients:   cfg.Clients,
		Conns:     poolSize(cfg.Conns, splitAddrs(cfg.Addr)),
		Loop:      "closed",
		Keys:      cfg.Keys,
		ValueSize: cfg.ValueSize,
		Mix:       cfg.Mix.String(),
		Dist:      cfg.Dist,
		Elapsed:   res.elapsed.Seconds(),

		Interrupted: res.interrupted,
	}
	if res.unreachable != nil {
		rep.Unreachable = res.unreachable.Error()
	}
	switch {
	case cfg.Inproc:
		rep.Mode, rep.Addr, rep.Conns = "inproc", "", 0
	case cfg.Etcd:
		rep.Mode = "etcd"
	case cfg.Redis:
		rep.Mode, rep.Conns = "redis", cfg.Clients
	}
	if cfg.TTL > 0 {
		rep.TTLSeconds, rep.TTLFraction = int64(cfg.TTL.Seconds()), cfg.TTLFraction
	}
	if res.rate > 0 {
		met := res.rateMet()
		rep.Loop, rep.TargetRate = "open", res.rate
		rep.Scheduled, rep.Missed, rep.RateMet = res.scheduled, res.missed, &met
	}
	for k := range numOps {
		o := &res.ops[k]
		if cfg.Mix[k] == 0 && o.count() == 0 && o.failed() == 0 {
			continue
		}
		rep.Ops = append(rep.Ops, summarize(k.String(), o, rep.Elapsed))
	}
	total := res.total()
	rep.Total = summarize("total", &total, rep.Elapsed)
	return rep
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeTable prints the human summary: one row per op and a total.
func (r *report) writeTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "op\tcount\tops/s\tp50\tp90\tp99\tp99.9\tmax\terrors")
	for _, o := range append(slices.Clip(r.Ops), r.Total) {
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t%d\n", o.Op, o.Count, o.OpsPerSec,
			formatLatency(o.P50), formatLatency(o.P90), formatLatency(o.P99),
			formatLatency(o.P999), formatLatency(o.Max), o.Errors)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, o := range r.Ops {
		if o.Op == opGet.String() && o.Count > 0 {
			fmt.Fprintf(w, "get hit rate %.1f%%\n", 100*float64(o.Found)/float64(o.Count))
		}
	}
	if r.Loop == "open" {
		fmt.Fprintf(w, "open loop: target %.0f ops/s, achieved %.0f ops/s", r.TargetRate,
			float64(r.Total.Count+r.Total.Errors)/r.Elapsed)
		if r.RateMet != nil && !*r.RateMet {
			fmt.Fprintf(w, "; RATE NOT MET: %d requests due before the end never started (every client was busy)", r.Missed)
		}
		fmt.Fprintln(w)
	}
	if r.Interrupted {
		fmt.Fprintln(w, "interrupted: the numbers cover the run until the signal")
	}
	if r.Unreachable != "" {
		fmt.Fprintln(w, "stopped at --give-up: the numbers cover the run until the server was found unreachable")
	}
	return nil
}

// formatLatency prints nanoseconds with three significant digits in a
// unit that fits: 850ns, 12.3µs, 1.25ms, 2.10s.
func formatLatency(ns int64) string {
	switch {
	case ns < 1_000:
		return fmt.Sprintf("%dns", ns)
	case ns < 999_500: // rounds to below 1000µs
		return trim3(float64(ns)/1e3) + "µs"
	case ns < 999_500_000:
		return trim3(float64(ns)/1e6) + "ms"
	}
	return trim3(float64(ns)/1e9) + "s"
}

// trim3 prints v (1 <= v < 1000, or more for seconds) with three
// significant digits.
func trim3(v float64) string {
	switch {
	case v < 9.995:
		return fmt.Sprintf("%.2f", v)
	case v < 99.95:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

// formatCodes prints error counts as "DeadlineExceeded=2 Unavailable=5",
// sorted by code name.
func formatCodes(errs map[codes.Code]int64) string {
	byName := map[string]int64{}
	for c, n := range errs {
		byName[c.String()] += n
	}
	return formatByName(byName)
}

// formatByName is formatCodes for counts already keyed by code name.
func formatByName(byName map[string]int64) string {
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		parts = append(parts, fmt.Sprintf("%s=%d", name, byName[name]))
	}
	return strings.Join(parts, " ")
}
