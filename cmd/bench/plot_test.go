package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"image"
	"image/png"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// svgTexts reads back an SVG picture: it fails the test on anything that
// is not well-formed XML or not a self-contained SVG document (no
// scripts, no images, no links), and returns the content of its <text>
// elements in document order.
func svgTexts(t *testing.T, data []byte) []string {
	t.Helper()
	var (
		texts []string
		text  *strings.Builder
		depth int
	)
	dec := xml.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 1 && (tok.Name.Local != "svg" || tok.Name.Space != "http://www.w3.org/2000/svg") {
				t.Fatalf("root element %v, want svg in the SVG namespace", tok.Name)
			}
			switch tok.Name.Local {
			case "script", "image", "a", "use", "foreignObject":
				t.Errorf("the picture has a <%s> element", tok.Name.Local)
			case "text":
				text = &strings.Builder{}
			}
		case xml.CharData:
			if text != nil {
				text.Write(tok)
			}
		case xml.EndElement:
			depth--
			if tok.Name.Local == "text" {
				texts = append(texts, text.String())
				text = nil
			}
		}
	}
	if depth != 0 || len(texts) == 0 {
		t.Fatalf("SVG ends at depth %d with %d texts", depth, len(texts))
	}
	return texts
}

// splitAtPanels splits the texts of a picture at the panel titles, which
// must all appear, in this order: head is what comes before the first,
// panels[i] what follows titles[i] up to the next title.
func splitAtPanels(t *testing.T, texts, titles []string) (head []string, panels [][]string) {
	t.Helper()
	i := -1
	for _, s := range texts {
		switch {
		case i+1 < len(titles) && s == titles[i+1]:
			i++
			panels = append(panels, nil)
		case i < 0:
			head = append(head, s)
		default:
			panels[i] = append(panels[i], s)
		}
	}
	if len(panels) != len(titles) {
		t.Fatalf("found %d of the panel titles %q in %q", len(panels), titles, texts)
	}
	return head, panels
}

// legendOf is the legend entry of series name among texts: the name,
// then " · " and its note.
func legendOf(texts []string, name string) string {
	for _, s := range texts {
		if s == name || strings.HasPrefix(s, name+" · ") {
			return s
		}
	}
	return ""
}

func panelTitles(p latencyPlot) []string {
	var titles []string
	for _, panel := range p.Panels {
		titles = append(titles, panel.Title)
	}
	return titles
}

// testPlot is comparePlot over made-up latencies: kvstore from 1ms to 3ms
// with a tail to 40ms, the baseline from 0.5 to 1.5ms.
func testPlot(t testing.TB) (latencyPlot, config) {
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

func TestLatencyPlotSVGHasTheTitlesLegendsAndAxes(t *testing.T) {
	p, _ := testPlot(t)
	svg, err := renderLatencyPlot(p, ".svg")
	if err != nil {
		t.Fatal(err)
	}
	head, panels := splitAtPanels(t, svgTexts(t, svg), panelTitles(p))

	if len(head) != 1+len(p.Subtitle) || head[0] != p.Title || !slices.Equal(head[1:], p.Subtitle) {
		t.Errorf("above the panels: %q, want the title %q and the subtitle %q", head, p.Title, p.Subtitle)
	}
	for _, want := range []string{"kvstore vs baseline", "2025-11-25 18:40 UTC"} {
		if !strings.Contains(p.Title, want) {
			t.Errorf("title %q lacks %q", p.Title, want)
		}
	}
	sub := strings.Join(p.Subtitle, "\n")
	for _, want := range []string{"50 clients", "4 connections", "16-byte values", "1000 keys", "uniform", "preloaded",
		"2s per run", "--fsync everysec --log-level warn", "all 2 rounds", "merged"} {
		if !strings.Contains(sub, want) {
			t.Errorf("subtitle %q lacks %q", sub, want)
		}
	}

	if len(panels) != len(compareScenarios) {
		t.Fatalf("%d panels, want one per workload (%d)", len(panels), len(compareScenarios))
	}
	for i, texts := range panels {
		sc := compareScenarios[i]
		title := p.Panels[i].Title
		if want := sc.name + " (set:get:del " + sc.mix.String() + ")"; title != want {
			t.Errorf("panel %d title %q, want %q", i, title, want)
		}
		// The legend: kvstore first, then the baseline.
		kv, base := slices.Index(texts, legendOf(texts, "kvstore")), slices.Index(texts, legendOf(texts, "baseline"))
		if kv < 0 || base < 0 || kv > base {
			t.Errorf("panel %q: legend entries at %d and %d in %q, want kvstore then baseline", title, kv, base, texts)
			continue
		}
		for _, l := range []string{texts[kv], texts[base]} {
			if !strings.Contains(l, "p99 ") || !strings.Contains(l, "max ") || !strings.Contains(l, " requests") {
				t.Errorf("panel %q: legend entry %q", title, l)
			}
		}
		// Both rounds merged: 2 x 10,001 requests, the slowest 40ms.
		if !strings.Contains(texts[kv], "max 40.0ms") || !strings.Contains(texts[kv], " 20002 requests") {
			t.Errorf("panel %q: kvstore legend %q, want the merged count and max", title, texts[kv])
		}
		// The ticks of the percentile axis, in order, and both axis titles.
		var xticks []string
		for _, s := range texts {
			if strings.HasSuffix(s, "%") {
				xticks = append(xticks, s)
			}
		}
		if want := []string{"0%", "90%", "99%", "99.9%", "99.99%"}; !slices.Equal(xticks, want) {
			t.Errorf("panel %q: x ticks %q, want %q", title, xticks, want)
		}
		for _, want := range []string{"percentile (log scale of 1/(1-p))", "latency (ms)"} {
			if !slices.Contains(texts, want) {
				t.Errorf("panel %q lacks the axis title %q", title, want)
			}
		}
		// The latency ticks: 0 to 4 ms by 1, over curves that end at
		// 99.99%, 3 ms (the 40 ms max is one request in 20002).
		for _, want := range []string{"0", "1", "4"} {
			if !slices.Contains(texts, want) {
				t.Errorf("panel %q lacks the latency tick %q: %q", title, want, texts)
			}
		}
	}
	if l := legendOf(panels[1], "baseline"); !strings.Contains(l, "median 5678 ops/s") {
		t.Errorf("set-only legend %q lacks the median throughput", l)
	}
}

// The latency scale covers the highest point: the top tick is at or above
// it, and every point of every curve lies inside both axes' ranges. The
// percentile axis gives each nine the same width.
func TestLatencyPanelScaleCoversTheHighestPoint(t *testing.T) {
	p, _ := testPlot(t)
	// One panel whose tail sits exactly on a tick and one whose tail is
	// just above a round number.
	p.Panels = append(p.Panels,
		latencyPanel{Title: "on a tick", Series: []latencySeries{{Name: "a", Points: []percentilePoint{{0, 1e6}, {99.99, 5e6}}}}},
		latencyPanel{Title: "just above", Series: []latencySeries{{Name: "a", Points: []percentilePoint{{0, 1e5}, {99, 2_000_001}}}}})
	for _, panel := range p.Panels {
		fig := newPanelFigure(panel)
		var maxMs float64
		for _, s := range panel.Series {
			for _, pt := range s.Points {
				maxMs = math.Max(maxMs, float64(pt.Latency)/1e6)
			}
		}
		y := fig.plot.Y
		ticks := y.Tick.Marker.Ticks(y.Min, y.Max)
		var values []float64
		for _, tk := range ticks {
			v, err := strconv.ParseFloat(tk.Label, 64)
			if err != nil || math.Abs(v-tk.Value) > 1e-9 {
				t.Errorf("panel %q: tick %+v is labelled with another value", panel.Title, tk)
			}
			values = append(values, tk.Value)
		}
		if len(values) < 2 || values[0] != 0 || !slices.IsSorted(values) || y.Min != 0 || y.Max != values[len(values)-1] {
			t.Errorf("panel %q: y ticks %v over %v..%v, want ascending from 0 to the top", panel.Title, values, y.Min, y.Max)
			continue
		}
		if y.Max < maxMs || y.Max > 2*maxMs+1e-9 {
			t.Errorf("panel %q: top tick %v for a highest point of %vms", panel.Title, y.Max, maxMs)
		}
		x := fig.plot.X
		if x.Min != 0 || math.Abs(x.Max-99.99) > 1e-9 {
			t.Errorf("panel %q: percentiles %v..%v, want 0..99.99", panel.Title, x.Min, x.Max)
		}
		for n := range plotNines + 1 {
			if got := x.Norm(percentileAt(float64(n))); math.Abs(got-float64(n)/plotNines) > 1e-9 {
				t.Errorf("panel %q: %v%% at %v of the axis, want %v", panel.Title, percentileAt(float64(n)), got, float64(n)/plotNines)
			}
		}
		if len(fig.curves) != len(panel.Series) {
			t.Fatalf("panel %q: %d curves for %d series", panel.Title, len(fig.curves), len(panel.Series))
		}
		for j, c := range fig.curves {
			if len(c) != len(panel.Series[j].Points) {
				t.Errorf("panel %q: %s has %d points, want %d", panel.Title, panel.Series[j].Name, len(c), len(panel.Series[j].Points))
			}
			for _, pt := range c {
				if pt.X < x.Min || pt.X > x.Max || pt.Y < y.Min || pt.Y > y.Max {
					t.Errorf("panel %q: %s point %v outside %v..%v x %v..%v", panel.Title, panel.Series[j].Name, pt, x.Min, x.Max, y.Min, y.Max)
					break
				}
			}
		}
	}
}

// The PNG is 900 pixels wide, grows with the panels, and shows both
// servers' curves in their colours.
func TestLatencyPlotPNG(t *testing.T) {
	p, _ := testPlot(t)
	decode := func(p latencyPlot) image.Image {
		t.Helper()
		data, err := renderLatencyPlot(p, ".png")
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("not a PNG: %v", err)
		}
		return img
	}
	img := decode(p)
	if w := img.Bounds().Dx(); w != 900 {
		t.Errorf("%d pixels wide, want 900", w)
	}
	one := p
	one.Panels = one.Panels[:1]
	if h, h1 := img.Bounds().Dy(), decode(one).Bounds().Dy(); h1 < 300 || h < h1+2*300 {
		t.Errorf("%d pixels high with %d panels, %d with one: want about 300 more per panel", h, len(p.Panels), h1)
	}
	near := func(c, want [3]uint32) bool {
		for i := range c {
			if d := int(c[i]) - int(want[i]); d < -8 || d > 8 {
				return false
			}
		}
		return true
	}
	blue, orange := [3]uint32{0x1f, 0x5f, 0xa8}, [3]uint32{0xe0, 0x70, 0x00}
	var blues, oranges int
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			c := [3]uint32{r >> 8, g >> 8, bl >> 8}
			switch {
			case near(c, blue):
				blues++
			case near(c, orange):
				oranges++
			}
		}
	}
	// Three panels of two curves, each curve several hundred pixels long.
	if blues < 3*300 || oranges < 3*150 {
		t.Errorf("%d kvstore-blue and %d baseline-orange pixels: the curves are missing", blues, oranges)
	}
}

func TestLatencyPlotWithoutDataAndWithMarkupInLabels(t *testing.T) {
	p := latencyPlot{
		Title:    `a <b> & "c"`,
		Subtitle: []string{"server args: --x '<y>'"},
		Panels: []latencyPanel{{Title: "empty & co", Series: []latencySeries{
			{Name: "kvstore", Note: "no successful requests"},
			{Name: "base<line>", Points: []percentilePoint{{0, 2000}, {90, 3000}}},
			{Name: "one point", Points: []percentilePoint{{50, 1500}}},
		}}},
	}
	svg, err := renderLatencyPlot(p, ".svg")
	if err != nil {
		t.Fatal(err)
	}
	head, panels := splitAtPanels(t, svgTexts(t, svg), []string{"empty & co"})
	if !slices.Equal(head, []string{p.Title, p.Subtitle[0]}) {
		t.Errorf("labels did not survive escaping: %q", head)
	}
	for _, want := range []string{"kvstore · no successful requests", "base<line>", "one point"} {
		if !slices.Contains(panels[0], want) {
			t.Errorf("legend lacks %q: %q", want, panels[0])
		}
	}
	fig := newPanelFigure(p.Panels[0])
	if len(fig.curves) != 3 || fig.curves[0] != nil || len(fig.curves[1]) != 2 || len(fig.curves[2]) != 1 {
		t.Errorf("curves %v, want none for kvstore, two points and one", fig.curves)
	}

	// Panels without series, without data, and no panels at all: a 0..1ms
	// scale, still a picture in both formats.
	for _, p := range []latencyPlot{
		{Panels: []latencyPanel{{Title: "nothing"}}},
		{Panels: []latencyPanel{{Title: "no data", Series: []latencySeries{{Name: "a"}}}}},
		{Title: "no panels"},
		{},
	} {
		for _, format := range plotFormats {
			data, err := renderLatencyPlot(p, format)
			if err != nil || len(data) == 0 {
				t.Errorf("%+v as %s: %d bytes, %v", p, format, len(data), err)
			}
		}
		for _, panel := range p.Panels {
			y := newPanelFigure(panel).plot.Y
			if y.Min != 0 || y.Max != 1 {
				t.Errorf("panel %q: latency scale %v..%v, want 0..1", panel.Title, y.Min, y.Max)
			}
		}
	}
	if _, err := renderLatencyPlot(p, ".pdf"); err == nil {
		t.Error("rendered a .pdf")
	}
}

func TestPlotFormatByExtension(t *testing.T) {
	for file, want := range map[string]string{"a.svg": ".svg", "docs/latency.png": ".png", "A.PNG": ".png", "x.y.Svg": ".svg"} {
		if got, err := plotFormatOf(file); got != want || err != nil {
			t.Errorf("plotFormatOf(%q) = %q, %v; want %q", file, got, err, want)
		}
	}
	for _, file := range []string{"a.pdf", "svg", "a.svg.txt", ""} {
		if _, err := plotFormatOf(file); err == nil || !strings.Contains(err.Error(), ".svg or .png") {
			t.Errorf("plotFormatOf(%q): %v, want an error naming .svg and .png", file, err)
		}
	}
}

// BenchmarkRenderLatencyPlot draws a --compare plot of three panels.
func BenchmarkRenderLatencyPlot(b *testing.B) {
	p, _ := testPlot(b)
	for _, format := range plotFormats {
		b.Run(format[1:], func(b *testing.B) {
			for b.Loop() {
				if _, err := renderLatencyPlot(p, format); err != nil {
					b.Fatal(err)
				}
			}
		})
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
