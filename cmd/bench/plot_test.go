package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// svgDoc is what parseSVG reads back from renderLatencyPlot's output.
type svgDoc struct {
	root     xml.StartElement
	title    string // the visible title
	subtitle []string
	panels   []*svgPanel
}

type svgPanel struct {
	title          string
	frame          struct{ x, y, w, h float64 }
	yticks         []float64
	xticks         []string
	xlabel, ylabel string
	legend         []string
	series         map[string][][2]float64 // name (the polyline's title) -> points, in pixels
	seriesOrder    []string
}

func (p *svgPanel) legendOf(name string) string {
	for _, l := range p.legend {
		if strings.HasPrefix(l, name+" ") {
			return l
		}
	}
	return ""
}

// parseSVG decodes data token by token, failing the test on anything that
// is not well-formed XML, and collects the parts of the plot by class.
func parseSVG(t *testing.T, data []byte) svgDoc {
	t.Helper()
	var (
		doc        svgDoc
		depth      int
		panel      *svgPanel
		text       *strings.Builder // the <text> being read, with its tspans
		class      string           // of that <text>
		legend     bool             // inside a legend group
		polyPoints [][2]float64     // of the polyline being read
		polyTitle  *strings.Builder // its <title>, while being read
	)
	attr := func(e xml.StartElement, name string) string {
		for _, a := range e.Attr {
			if a.Name.Local == name {
				return a.Value
			}
		}
		return ""
	}
	num := func(s string) float64 {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("not a number: %q", s)
		}
		return f
	}
	dec := xml.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, data)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 1 {
				doc.root = tok.Copy()
			}
			switch tok.Name.Local {
			case "g":
				switch attr(tok, "class") {
				case "panel":
					panel = &svgPanel{series: map[string][][2]float64{}}
					doc.panels = append(doc.panels, panel)
				case "legend":
					legend = true
				}
			case "rect":
				if attr(tok, "class") == "frame" {
					panel.frame.x, panel.frame.y = num(attr(tok, "x")), num(attr(tok, "y"))
					panel.frame.w, panel.frame.h = num(attr(tok, "width")), num(attr(tok, "height"))
				}
			case "text":
				text, class = &strings.Builder{}, attr(tok, "class")
			case "polyline":
				polyPoints = nil
				for _, xy := range strings.Fields(attr(tok, "points")) {
					x, y, ok := strings.Cut(xy, ",")
					if !ok {
						t.Fatalf("bad point %q", xy)
					}
					polyPoints = append(polyPoints, [2]float64{num(x), num(y)})
				}
			case "title":
				if polyPoints != nil {
					polyTitle = &strings.Builder{}
				}
			}
		case xml.CharData:
			switch {
			case text != nil:
				text.Write(tok)
			case polyTitle != nil:
				polyTitle.Write(tok)
			}
		case xml.EndElement:
			depth--
			switch tok.Name.Local {
			case "g":
				legend = false
			case "title":
				if polyTitle != nil {
					name := polyTitle.String()
					panel.series[name] = polyPoints
					panel.seriesOrder = append(panel.seriesOrder, name)
					polyTitle = nil
				}
			case "polyline":
				polyPoints = nil
			case "text":
				s := text.String()
				switch {
				case class == "title":
					doc.title = s
				case class == "subtitle":
					doc.subtitle = append(doc.subtitle, s)
				case class == "panel-title":
					panel.title = s
				case class == "ytick":
					panel.yticks = append(panel.yticks, num(s))
				case class == "xtick":
					panel.xticks = append(panel.xticks, s)
				case class == "xlabel":
					panel.xlabel = s
				case class == "ylabel":
					panel.ylabel = s
				case legend:
					panel.legend = append(panel.legend, s)
				}
				text = nil
			}
		}
	}
	return doc
}

// testPlot is comparePlot over made-up latencies: kvstore from 1ms to 3ms
// with a tail to 40ms, the baseline from 0.5 to 1.5ms.
func testPlot(t *testing.T) (latencyPlot, config) {
	t.Helper()
	cfg := config{Clients: 50, Conns: 4, Keys: 1000, ValueSize: 16, Dist: distUniform, Duration: 2 * time.Second,
		Rounds: 2, ServerArgs: "--fsync everysec  --log-level warn"}
	lat := newMergedLatencies()
	for _, sc := range compareScenarios {
		for round := range cfg.Rounds {
			kv, base := newHistogram(), newHistogram()
			for i := range int64(10_000) {
				kv.RecordValue(1_000_000 + i*200)
				base.RecordValue(500_000 + i*100)
			}
			kv.RecordValue(40_000_000 + int64(round))
			lat.add(sc.name, "kvstore", kv)
			lat.add(sc.name, "baseline", base)
		}
	}
	summary := []compareSummary{{Workload: "set only", KVOpsPerSec: 1234, BaseOpsPerSec: 5678}}
	return comparePlot(cfg, "kvstore", "baseline", lat, summary, time.Date(2025, 11, 25, 18, 40, 0, 0, time.UTC)), cfg
}

func TestLatencyPlotIsWellFormedSVGWithBothSeriesPerPanel(t *testing.T) {
	p, _ := testPlot(t)
	svg := parseSVG(t, renderLatencyPlot(p))

	if svg.root.Name.Local != "svg" || svg.root.Name.Space != "http://www.w3.org/2000/svg" {
		t.Errorf("root element %v, want svg in the SVG namespace", svg.root.Name)
	}
	version := ""
	for _, a := range svg.root.Attr {
		if a.Name.Local == "version" {
			version = a.Value
		}
	}
	if version != "1.1" {
		t.Errorf("svg version %q, want 1.1", version)
	}
	for _, want := range []string{"kvstore vs baseline", "2025-11-25 18:40 UTC"} {
		if !strings.Contains(svg.title, want) {
			t.Errorf("title %q lacks %q", svg.title, want)
		}
	}
	sub := strings.Join(svg.subtitle, "\n")
	for _, want := range []string{"50 clients", "4 connections", "16-byte values", "1000 keys", "uniform", "preloaded",
		"2s per run", "--fsync everysec --log-level warn", "all 2 rounds", "merged"} {
		if !strings.Contains(sub, want) {
			t.Errorf("subtitle %q lacks %q", sub, want)
		}
	}

	if len(svg.panels) != len(compareScenarios) {
		t.Fatalf("%d panels, want one per workload (%d)", len(svg.panels), len(compareScenarios))
	}
	for i, panel := range svg.panels {
		sc := compareScenarios[i]
		if want := sc.name + " (set:get:del " + sc.mix.String() + ")"; panel.title != want {
			t.Errorf("panel %d title %q, want %q", i, panel.title, want)
		}
		if !slices.Equal(panel.seriesOrder, []string{"kvstore", "baseline"}) {
			t.Errorf("panel %q: series %v, want kvstore and baseline", panel.title, panel.seriesOrder)
		}
		for _, name := range []string{"kvstore", "baseline"} {
			if n := len(panel.series[name]); n != plotSamples+1 {
				t.Errorf("panel %q: %s has %d points, want %d", panel.title, name, n, plotSamples+1)
			}
			if l := panel.legendOf(name); !strings.Contains(l, "p99 ") || !strings.Contains(l, "max ") || !strings.Contains(l, " requests") {
				t.Errorf("panel %q: legend of %s is %q", panel.title, name, l)
			}
		}
		// Both rounds merged: 2 x 10,001 requests, the slowest 40ms.
		if l := panel.legendOf("kvstore"); !strings.Contains(l, "max 40.0ms") || !strings.Contains(l, " 20002 requests") {
			t.Errorf("panel %q: kvstore legend %q, want the merged count and max", panel.title, l)
		}
		if want := []string{"0%", "90%", "99%", "99.9%", "99.99%"}; !slices.Equal(panel.xticks, want) {
			t.Errorf("panel %q: x ticks %q, want %q", panel.title, panel.xticks, want)
		}
		if !strings.HasPrefix(panel.xlabel, "percentile") || panel.ylabel != "latency (ms)" {
			t.Errorf("panel %q: axis titles %q and %q", panel.title, panel.xlabel, panel.ylabel)
		}
	}
	if l := svg.panels[1].legendOf("baseline"); !strings.Contains(l, "median 5678 ops/s") {
		t.Errorf("set-only legend %q lacks the median throughput", l)
	}
}

// The latency scale covers the highest point: the top tick is at or above
// it, and every point of every curve lies inside the plot area.
func TestLatencyPlotScaleCoversTheHighestPoint(t *testing.T) {
	p, _ := testPlot(t)
	// One panel whose tail sits exactly on a tick and one whose tail is
	// just above a round number.
	p.Panels = append(p.Panels,
		latencyPanel{Title: "on a tick", Series: []latencySeries{{Name: "a", Points: []percentilePoint{{0, 1e6}, {99.99, 5e6}}}}},
		latencyPanel{Title: "just above", Series: []latencySeries{{Name: "a", Points: []percentilePoint{{0, 1e5}, {99, 2_000_001}}}}})
	svg := parseSVG(t, renderLatencyPlot(p))
	for i, panel := range svg.panels {
		var maxMs float64
		for _, s := range p.Panels[i].Series {
			for _, pt := range s.Points {
				maxMs = math.Max(maxMs, float64(pt.Latency)/1e6)
			}
		}
		if len(panel.yticks) < 2 || panel.yticks[0] != 0 || !slices.IsSorted(panel.yticks) {
			t.Errorf("panel %q: y ticks %v, want ascending from 0", panel.title, panel.yticks)
			continue
		}
		if top := panel.yticks[len(panel.yticks)-1]; top < maxMs || top > 2*maxMs+1e-9 {
			t.Errorf("panel %q: top tick %v for a highest point of %vms", panel.title, top, maxMs)
		}
		f := panel.frame
		for name, pts := range panel.series {
			for _, pt := range pts {
				if pt[0] < f.x || pt[0] > f.x+f.w || pt[1] < f.y || pt[1] > f.y+f.h {
					t.Errorf("panel %q: %s point %v outside the plot area %+v", panel.title, name, pt, f)
					break
				}
			}
		}
	}
}

func TestLatencyPlotWithoutDataAndWithMarkupInLabels(t *testing.T) {
	p := latencyPlot{
		Title:    `a <b> & "c"`,
		Subtitle: []string{"server args: --x '<y>'"},
		Panels: []latencyPanel{{Title: "empty & co", Series: []latencySeries{
			{Name: "kvstore", Note: "no successful requests"},
			{Name: "base<line>", Points: []percentilePoint{{0, 2000}, {90, 3000}}},
		}}},
	}
	svg := parseSVG(t, renderLatencyPlot(p))
	if svg.title != p.Title || svg.subtitle[0] != p.Subtitle[0] || svg.panels[0].title != "empty & co" {
		t.Errorf("labels did not survive escaping: %q, %q, %q", svg.title, svg.subtitle, svg.panels[0].title)
	}
	panel := svg.panels[0]
	if len(panel.series) != 1 || len(panel.series["base<line>"]) != 2 {
		t.Errorf("series %v, want only base<line>'s curve", panel.series)
	}
	if l := panel.legendOf("kvstore"); !strings.Contains(l, "no successful requests") {
		t.Errorf("legend %q", panel.legend)
	}

	// All panels empty: a 0..1ms scale, still well-formed.
	svg = parseSVG(t, renderLatencyPlot(latencyPlot{Panels: []latencyPanel{{Title: "nothing"}}}))
	if !slices.Equal(svg.panels[0].yticks, []float64{0, 1}) {
		t.Errorf("empty panel y ticks %v, want 0 and 1", svg.panels[0].yticks)
	}
}

func TestPercentileCurveFollowsTheHistogram(t *testing.T) {
	h := newHistogram()
	for i := int64(1); i <= 10_000; i++ {
		h.RecordValue(i * 1000) // 1µs .. 10ms
	}
	pts := percentileCurve(h)
	if len(pts) != plotSamples+1 {
		t.Fatalf("%d points, want %d", len(pts), plotSamples+1)
	}
	for i, c := range []struct {
		at        int // sample index: plotSamples/plotNines per nine
		pct       float64
		latencyNs int64
	}{{0, 0, 1000}, {100, 90, 9_000_000}, {200, 99, 9_900_000}, {400, 99.99, 9_999_000}} {
		pt := pts[c.at]
		if math.Abs(pt.Percentile-c.pct) > 1e-9 || !h.ValuesAreEquivalent(pt.Latency, c.latencyNs) {
			t.Errorf("check %d: point %d is %+v, want %v%% at %dns", i, c.at, pt, c.pct, c.latencyNs)
		}
	}
	for i := 1; i < len(pts); i++ {
		if pts[i].Percentile <= pts[i-1].Percentile || pts[i].Latency < pts[i-1].Latency {
			t.Fatalf("not ascending at %d: %+v after %+v", i, pts[i], pts[i-1])
		}
	}
	if percentileCurve(newHistogram()) != nil || percentileCurve(nil) != nil {
		t.Error("an empty histogram should have no curve")
	}
	if math.Abs(ninesOf(percentileAt(2.5))-2.5) > 1e-9 {
		t.Error("ninesOf does not invert percentileAt")
	}
}

func TestNiceScale(t *testing.T) {
	for _, c := range []struct {
		max   float64
		step  float64
		steps int
	}{
		{0, 1, 1},
		{math.NaN(), 1, 1},
		{1, 0.2, 5},
		{1.01, 0.5, 3},
		{4.2, 1, 5},
		{5, 1, 5},
		{0.037, 0.01, 4},
		{40.02, 10, 5},
		{123, 50, 3},
	} {
		step, steps := niceScale(c.max, 5)
		if math.Abs(step-c.step) > 1e-12 || steps != c.steps {
			t.Errorf("niceScale(%v) = %v x %d, want %v x %d", c.max, step, steps, c.step, c.steps)
		}
		if !math.IsNaN(c.max) && step*float64(steps) < c.max {
			t.Errorf("niceScale(%v) = %v x %d does not reach the maximum", c.max, step, steps)
		}
	}
}
