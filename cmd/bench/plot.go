package main

import (
	"encoding/xml"
	"fmt"
	"math"
	"strings"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// The latency plot of --compare --svg: one panel per workload, one curve
// per server, latency (linear, ms) over percentile on the HDR scale, where
// x = log10(1/(1-p)) gives each further nine (90%, 99%, 99.9%) the same
// width, so the tail is as visible as the median.
//
// comparePlot turns the merged histograms into plain data (latencyPlot);
// renderLatencyPlot turns that into SVG 1.1 text and does nothing else, so
// tests can check the picture without a run.

// latencyPlot is what renderLatencyPlot draws.
type latencyPlot struct {
	Title    string
	Subtitle []string // lines under the title: parameters, method
	Panels   []latencyPanel
}

// latencyPanel is one workload.
type latencyPanel struct {
	Title  string
	Series []latencySeries // drawn in this order, coloured by position
}

// latencySeries is one server's curve.
type latencySeries struct {
	Name   string
	Note   string            // legend text after the name
	Points []percentilePoint // by ascending percentile; none: no data
}

// percentilePoint is a latency at a percentile.
type percentilePoint struct {
	Percentile float64 // 0 <= p < 100
	Latency    int64   // nanoseconds
}

// Plot range: percentiles from 0 to 99.99% (four nines), sampled at
// plotSamples+1 points, about one per two pixels of the plot's width.
const (
	plotNines   = 4
	plotSamples = 400
)

// runKey names the runs of one server on one workload.
type runKey struct{ workload, server string }

// mergedLatencies sums each server's histograms per workload over the
// rounds, for --svg.
type mergedLatencies struct {
	hists  map[runKey]*hdrhistogram.Histogram
	rounds map[runKey]int
}

func newMergedLatencies() *mergedLatencies {
	return &mergedLatencies{hists: map[runKey]*hdrhistogram.Histogram{}, rounds: map[runKey]int{}}
}

func (m *mergedLatencies) add(workload, server string, h *hdrhistogram.Histogram) {
	if h == nil {
		return
	}
	k := runKey{workload, server}
	if m.hists[k] == nil {
		m.hists[k] = newHistogram()
	}
	m.hists[k].Merge(h)
	m.rounds[k]++
}

// percentileCurve samples h from the 0th to the 99.99th percentile at
// even steps of the HDR scale. It returns nil for an empty histogram.
func percentileCurve(h *hdrhistogram.Histogram) []percentilePoint {
	if h == nil || h.TotalCount() == 0 {
		return nil
	}
	ps := make([]float64, plotSamples+1)
	for i := range ps {
		ps[i] = percentileAt(plotNines * float64(i) / plotSamples)
	}
	vs := h.ValueAtPercentilesSlice(ps)
	pts := make([]percentilePoint, len(ps))
	for i := range ps {
		pts[i] = percentilePoint{ps[i], vs[i]}
	}
	return pts
}

// percentileAt is the percentile at x nines: 0 -> 0%, 1 -> 90%, 2 -> 99%.
func percentileAt(nines float64) float64 { return 100 * (1 - math.Pow(10, -nines)) }

// ninesOf is the inverse of percentileAt: the x coordinate of percentile p.
func ninesOf(p float64) float64 { return math.Log10(100 / (100 - p)) }

// comparePlot is the picture of a --compare run: a panel per workload of
// cfg.scenarios(), in order, kvstore's curve and then the baseline's, each
// from the histogram of all its rounds merged (with equal run lengths,
// every round weighs by the requests it completed). now dates the title.
func comparePlot(cfg config, kv, base string, lat *mergedLatencies, summary []compareSummary, now time.Time) latencyPlot {
	loop := "closed loop"
	if cfg.Rate > 0 {
		loop = fmt.Sprintf("open loop at %.0f ops/s (latency from the intended start)", cfg.Rate)
	}
	serverArgs := strings.Join(strings.Fields(cfg.ServerArgs), " ")
	if serverArgs == "" {
		serverArgs = "none"
	}
	rounds, complete := 0, true
	for _, n := range lat.rounds {
		rounds = max(rounds, n)
		complete = complete && n == cfg.Rounds
	}
	complete = complete && len(lat.rounds) == 2*len(cfg.scenarios())
	var curve string
	switch {
	case !complete:
		curve = fmt.Sprintf("the HDR histograms of the rounds that finished (at most %d of %d) of that server, merged", rounds, cfg.Rounds)
	case cfg.Rounds == 1:
		curve = "the HDR histogram of that server's single run (--rounds 1)"
	default:
		curve = fmt.Sprintf("the HDR histograms of all %d rounds of that server, merged", cfg.Rounds)
	}
	p := latencyPlot{
		Title: fmt.Sprintf("%s vs %s: latency by percentile, %s", kv, base, now.Format("2006-01-02 15:04 MST")),
		Subtitle: []string{
			fmt.Sprintf("%d clients over %d connections, %s; %d-byte values; %d keys, %s, all preloaded; %s per run",
				cfg.Clients, cfg.Conns, loop, cfg.ValueSize, cfg.Keys, cfg.Dist, runLength(cfg)),
			fmt.Sprintf("%s server args: %s", kv, serverArgs),
			fmt.Sprintf("Each curve: %s, successful requests only.", curve),
			"Curves end at 99.99%; the max is in the legend. Each panel has its own latency scale.",
		},
	}
	for _, sc := range cfg.scenarios() {
		panel := latencyPanel{Title: fmt.Sprintf("%s (set:get:del %s)", sc.name, sc.mix)}
		for _, name := range []string{kv, base} {
			h := lat.hists[runKey{sc.name, name}]
			s := latencySeries{Name: name, Points: percentileCurve(h)}
			if s.Points == nil {
				s.Note = "no successful requests"
			} else {
				// SVG collapses runs of spaces: separate with dots.
				s.Note = fmt.Sprintf("p50 %s · p99 %s · p99.9 %s · max %s · %d requests",
					formatLatency(h.ValueAtPercentile(50)), formatLatency(h.ValueAtPercentile(99)),
					formatLatency(h.ValueAtPercentile(99.9)), formatLatency(h.Max()), h.TotalCount())
				for _, row := range summary {
					if row.Workload == sc.name {
						ops := row.KVOpsPerSec
						if name == base {
							ops = row.BaseOpsPerSec
						}
						s.Note += fmt.Sprintf(", median %.0f ops/s", ops)
					}
				}
			}
			panel.Series = append(panel.Series, s)
		}
		p.Panels = append(p.Panels, panel)
	}
	return p
}

// Layout of the picture, in pixels. The width suits a page or a README;
// the height grows with the panels.
const (
	svgWidth      = 900
	svgLeft       = 76 // y tick labels and the y axis title
	svgRight      = 32
	svgTitleY     = 30
	svgSubtitleY  = 54 // first subtitle line
	svgLineHeight = 17
	panelHeadH    = 62  // panel title and a legend line per series
	panelPlotH    = 240 // the plot area
	panelFootH    = 48  // x tick labels and the x axis title
	panelGap      = 18
	legendLineH   = 17
)

// Series styles by position: colour-blind-safe blue and orange, the
// second also dashed so that it survives a grey-scale print.
var seriesStyles = []struct{ colour, dash string }{
	{"#1f5fa8", ""},
	{"#e07000", "7 4"},
	{"#2a9d3a", "2 3"},
	{"#8e44ad", "10 3 2 3"},
}

// renderLatencyPlot draws p as a self-contained SVG 1.1 document: no
// scripts, no external fonts or images. The latency scale of each panel
// starts at 0 and ends at the first tick at or above its highest point.
func renderLatencyPlot(p latencyPlot) []byte {
	plotW := float64(svgWidth - svgLeft - svgRight)
	panelTop := svgSubtitleY + svgLineHeight*len(p.Subtitle) + 6
	panelH := panelHeadH + panelPlotH + panelFootH + panelGap
	height := panelTop + panelH*len(p.Panels)

	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="%d" height="%d" viewBox="0 0 %d %d" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">`+"\n",
		svgWidth, height, svgWidth, height)
	fmt.Fprintf(&b, "<title>%s</title>\n", esc(p.Title))
	fmt.Fprintf(&b, `<rect x="0" y="0" width="%d" height="%d" fill="#ffffff"/>`+"\n", svgWidth, height)
	fmt.Fprintf(&b, `<text class="title" x="%d" y="%d" font-size="17" font-weight="bold" fill="#111111">%s</text>`+"\n", svgLeft-56, svgTitleY, esc(p.Title))
	for i, line := range p.Subtitle {
		fmt.Fprintf(&b, `<text class="subtitle" x="%d" y="%d" fill="#444444">%s</text>`+"\n", svgLeft-56, svgSubtitleY+svgLineHeight*i, esc(line))
	}

	for i, panel := range p.Panels {
		top := float64(panelTop + panelH*i)
		plotTop := top + panelHeadH
		plotBottom := plotTop + panelPlotH
		fmt.Fprintf(&b, "<g class=\"panel\">\n")
		fmt.Fprintf(&b, `<text class="panel-title" x="%d" y="%.0f" font-size="14" font-weight="bold" fill="#111111">%s</text>`+"\n", svgLeft, top+16, esc(panel.Title))

		var maxNs int64
		for _, s := range panel.Series {
			for _, pt := range s.Points {
				maxNs = max(maxNs, pt.Latency)
			}
		}
		step, ticks := niceScale(float64(maxNs)/1e6, 5)
		yTop := step * float64(ticks)
		xOf := func(percentile float64) float64 { return svgLeft + plotW*min(ninesOf(percentile), plotNines)/plotNines }
		yOf := func(ns int64) float64 { return plotBottom - panelPlotH*(float64(ns)/1e6)/yTop }

		// Grid, ticks and labels.
		fmt.Fprintf(&b, `<rect class="frame" x="%d" y="%.0f" width="%.0f" height="%d" fill="#fafafa" stroke="#888888" stroke-width="1"/>`+"\n",
			svgLeft, plotTop, plotW, panelPlotH)
		decimals := max(0, -int(math.Floor(math.Log10(step))))
		for t := 0; t <= ticks; t++ {
			y := plotBottom - panelPlotH*float64(t)/float64(ticks)
			if t > 0 {
				fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#dddddd" stroke-width="1"/>`+"\n", svgLeft, y, svgLeft+plotW, y)
			}
			fmt.Fprintf(&b, `<text class="ytick" x="%d" y="%.1f" text-anchor="end" fill="#333333">%.*f</text>`+"\n", svgLeft-6, y+4, decimals, step*float64(t))
		}
		for n := 0; n <= plotNines; n++ {
			x := svgLeft + plotW*float64(n)/plotNines
			if n > 0 && n < plotNines {
				fmt.Fprintf(&b, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#dddddd" stroke-width="1"/>`+"\n", x, plotTop, x, plotBottom)
			}
			fmt.Fprintf(&b, `<text class="xtick" x="%.1f" y="%.0f" text-anchor="middle" fill="#333333">%s</text>`+"\n", x, plotBottom+17, ninesLabel(n))
		}
		fmt.Fprintf(&b, `<text class="xlabel" x="%.0f" y="%.0f" text-anchor="middle" fill="#333333">percentile (log scale of 1/(1-p))</text>`+"\n", svgLeft+plotW/2, plotBottom+37)
		yMid := plotTop + panelPlotH/2
		fmt.Fprintf(&b, `<text class="ylabel" x="22" y="%.0f" text-anchor="middle" fill="#333333" transform="rotate(-90 22 %.0f)">latency (ms)</text>`+"\n", yMid, yMid)

		// Curves, then the legend above the plot area.
		for j, s := range panel.Series {
			st := seriesStyles[j%len(seriesStyles)]
			ly := top + 16 + legendLineH*float64(j+1)
			dash := ""
			if st.dash != "" {
				dash = fmt.Sprintf(` stroke-dasharray="%s"`, st.dash)
			}
			fmt.Fprintf(&b, `<g class="legend"><line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s" stroke-width="2.5"%s/>`,
				svgLeft, ly-4, svgLeft+28, ly-4, st.colour, dash)
			fmt.Fprintf(&b, `<text x="%d" y="%.1f" fill="#111111"><tspan font-weight="bold">%s</tspan> · %s</text></g>`+"\n",
				svgLeft+36, ly, esc(s.Name), esc(s.Note))
			if len(s.Points) == 0 {
				continue
			}
			fmt.Fprintf(&b, `<polyline class="series" fill="none" stroke="%s" stroke-width="2" stroke-linejoin="round"%s points="`, st.colour, dash)
			for k, pt := range s.Points {
				if k > 0 {
					b.WriteByte(' ')
				}
				fmt.Fprintf(&b, "%.1f,%.1f", xOf(pt.Percentile), yOf(pt.Latency))
			}
			fmt.Fprintf(&b, "\"><title>%s</title></polyline>\n", esc(s.Name))
		}
		b.WriteString("</g>\n")
	}
	b.WriteString("</svg>\n")
	return []byte(b.String())
}

// ninesLabel names the percentile at n nines: 0%, 90%, 99%, 99.9%, ...
func ninesLabel(n int) string {
	switch n {
	case 0:
		return "0%"
	case 1:
		return "90%"
	case 2:
		return "99%"
	}
	return "99." + strings.Repeat("9", n-2) + "%"
}

// niceScale divides 0..maxValue into about target steps of 1, 2 or 5
// times a power of ten: it returns the step and the number of steps,
// whose product is at least maxValue. An empty range gets 0..1.
func niceScale(maxValue float64, target int) (step float64, steps int) {
	if !(maxValue > 0) || math.IsInf(maxValue, 0) {
		return 1, 1
	}
	raw := maxValue / float64(target)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if step = m * mag; step >= raw {
			break
		}
	}
	steps = max(1, int(math.Ceil(maxValue/step)))
	for step*float64(steps) < maxValue {
		steps++
	}
	return step, steps
}

// esc escapes s for XML text and attribute values.
func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}
