package main

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	xfont "golang.org/x/image/font"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// The latency plot of --compare --plot: one panel per workload, one curve
// per server, latency (linear, ms) over percentile on the HDR scale, where
// x = log10(1/(1-p)) gives each further nine (90%, 99%, 99.9%) the same
// width, so the tail is as visible as the median.
//
// comparePlot turns the merged histograms into plain data (latencyPlot);
// newPanelFigure turns a panel into a gonum/plot plot and legend, and
// renderLatencyPlot stacks those under the title as SVG or PNG, so tests
// can check the picture without a run.

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
// rounds, for --plot.
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

// Layout of the picture, in points (1/72 inch): 675pt is 900 pixels at
// the 96 DPI of the PNG, and of a browser showing the SVG. The height
// grows with the panels.
const (
	plotWidth     vg.Length = 675
	plotDPI                 = 96
	marginX       vg.Length = 15 // left of the title; left and right of the panels
	titleBottom   vg.Length = 26 // from the top
	subtitleFirst vg.Length = 44 // bottom of the first subtitle line, from the top
	lineHeight    vg.Length = 13
	panelTitleH   vg.Length = 17 // above the legend
	panelH        vg.Length = 216
	panelGap      vg.Length = 14
	marginBottom  vg.Length = 6
)

// Fonts and colours. gonum/plot embeds the Liberation fonts, so the PNG
// looks the same everywhere; the SVG only names the family (embedding it
// would add ~400 KB per face), and a viewer without it uses its default.
var (
	sansFont   = font.Font{Typeface: "Liberation", Variant: "Sans"}
	boldFont   = font.Font{Typeface: "Liberation", Variant: "Sans", Weight: xfont.WeightBold}
	inkColour  = color.RGBA{0x11, 0x11, 0x11, 0xff}
	noteColour = color.RGBA{0x44, 0x44, 0x44, 0xff}
	axisColour = color.RGBA{0x33, 0x33, 0x33, 0xff}
	gridColour = color.RGBA{0xdd, 0xdd, 0xdd, 0xff}
)

// Series styles by position: colour-blind-safe blue and orange, the
// second also dashed so that it survives a grey-scale print.
var seriesStyles = []draw.LineStyle{
	{Color: color.RGBA{0x1f, 0x5f, 0xa8, 0xff}, Width: 1.5},
	{Color: color.RGBA{0xe0, 0x70, 0x00, 0xff}, Width: 1.5, Dashes: []vg.Length{5, 3}},
	{Color: color.RGBA{0x2a, 0x9d, 0x3a, 0xff}, Width: 1.5, Dashes: []vg.Length{1.5, 2.25}},
	{Color: color.RGBA{0x8e, 0x44, 0xad, 0xff}, Width: 1.5, Dashes: []vg.Length{7.5, 2.25, 1.5, 2.25}},
}

func textStyle(f font.Font, size vg.Length, c color.Color) text.Style {
	return text.Style{Color: c, Font: font.From(f, size), Handler: plot.DefaultTextHandler}
}

// hdrScale is the percentile axis: x = log10(1/(1-p)), so that each
// further nine has the same width. Percentiles past max are drawn at max.
type hdrScale struct{}

// Normalize implements plot.Normalizer.
func (hdrScale) Normalize(min, max, x float64) float64 {
	lo, hi := ninesOf(min), ninesOf(max)
	return (ninesOf(math.Min(x, max)) - lo) / (hi - lo)
}

// panelFigure is a panel as gonum/plot draws it: the axes and curves,
// and the legend that goes above them.
type panelFigure struct {
	plot   *plot.Plot
	legend plot.Legend
	curves []plotter.XYs // by series, in ms over percentile; nil without points
}

// newPanelFigure builds the plot of one panel. The latency scale starts
// at 0 and ends at the first tick at or above the panel's highest point.
func newPanelFigure(panel latencyPanel) panelFigure {
	p := plot.New()
	p.X.Label.Text = "percentile (log scale of 1/(1-p))"
	p.Y.Label.Text = "latency (ms)"
	for _, ax := range []*plot.Axis{&p.X, &p.Y} {
		ax.Label.TextStyle.Font = font.From(sansFont, 9)
		ax.Label.TextStyle.Color = axisColour
		ax.Tick.Label.Font = font.From(sansFont, 9)
		ax.Tick.Label.Color = axisColour
		ax.Color, ax.Tick.Color = axisColour, axisColour
	}
	grid := plotter.NewGrid()
	grid.Vertical = draw.LineStyle{Color: gridColour, Width: 0.75}
	grid.Horizontal = grid.Vertical
	p.Add(grid)

	legend := plot.NewLegend()
	legend.Top, legend.Left = true, true
	legend.TextStyle = textStyle(sansFont, 9, inkColour)
	legend.Padding = 3
	legend.ThumbnailWidth = 21
	fig := panelFigure{plot: p}
	var maxMs float64
	for j, s := range panel.Series {
		line := &plotter.Line{LineStyle: seriesStyles[j%len(seriesStyles)]}
		if len(s.Points) > 0 {
			line.XYs = make(plotter.XYs, len(s.Points))
			for k, pt := range s.Points {
				line.XYs[k] = plotter.XY{X: pt.Percentile, Y: float64(pt.Latency) / 1e6}
				maxMs = math.Max(maxMs, line.XYs[k].Y)
			}
			p.Add(line)
		}
		fig.curves = append(fig.curves, line.XYs)
		entry := s.Name
		if s.Note != "" {
			entry += " · " + s.Note
		}
		legend.Add(entry, line)
	}
	fig.legend = legend

	p.X.Scale = hdrScale{}
	p.X.Min, p.X.Max = 0, percentileAt(plotNines)
	var xticks []plot.Tick
	for n := range plotNines + 1 {
		xticks = append(xticks, plot.Tick{Value: percentileAt(float64(n)), Label: ninesLabel(n)})
	}
	p.X.Tick.Marker = plot.ConstantTicks(xticks)

	step, steps := niceScale(maxMs, 5)
	decimals := max(0, -int(math.Floor(math.Log10(step))))
	p.Y.Min, p.Y.Max = 0, step*float64(steps)
	var yticks []plot.Tick
	for t := range steps + 1 {
		v := step * float64(t)
		yticks = append(yticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', decimals, 64)})
	}
	p.Y.Tick.Marker = plot.ConstantTicks(yticks)
	return fig
}

// plotLayout places the parts of a picture.
type plotLayout struct {
	width, height vg.Length
	panelTop      vg.Length // from the top: where the first panel's head starts
	headH         vg.Length // a panel's title and legend
	tiles         draw.Tiles
}

func layoutOf(p latencyPlot, figs []panelFigure) plotLayout {
	l := plotLayout{width: plotWidth, panelTop: subtitleFirst + lineHeight*vg.Length(len(p.Subtitle)-1) + 8}
	var legendH vg.Length
	for _, f := range figs {
		legendH = max(legendH, f.legend.Rectangle(draw.Canvas{}).Size().Y)
	}
	l.headH = panelTitleH + legendH + 6
	h := l.panelTop + marginBottom
	if n := vg.Length(len(figs)); n > 0 {
		h += l.headH + n*panelH + (n-1)*(panelGap+l.headH)
	}
	// A whole number of pixels.
	px := vg.Inch / plotDPI
	l.height = vg.Length(math.Ceil(float64(h/px))) * px
	l.tiles = draw.Tiles{Rows: len(figs), Cols: 1, PadLeft: marginX, PadRight: marginX,
		PadTop: l.panelTop + l.headH, PadY: panelGap + l.headH, PadBottom: marginBottom + l.height - h}
	return l
}

// Plot formats renderLatencyPlot draws, by file name extension.
var plotFormats = []string{".svg", ".png"}

// plotFormatOf is the format of a plot file by its extension: ".svg" or
// ".png", or an error naming those.
func plotFormatOf(file string) (string, error) {
	ext := strings.ToLower(filepath.Ext(file))
	if !slices.Contains(plotFormats, ext) {
		return "", fmt.Errorf("%s: want a file name ending in %s", file, strings.Join(plotFormats, " or "))
	}
	return ext, nil
}

// renderLatencyPlot draws p as an SVG document (format ".svg", no scripts,
// no external images) or a PNG image (".png", plotDPI). Panels stack from
// the top, their plot areas aligned.
func renderLatencyPlot(p latencyPlot, format string) ([]byte, error) {
	figs := make([]panelFigure, len(p.Panels))
	for i, panel := range p.Panels {
		figs[i] = newPanelFigure(panel)
	}
	l := layoutOf(p, figs)
	var c vg.CanvasWriterTo
	switch format {
	case ".svg":
		c = vgsvg.New(l.width, l.height)
	case ".png":
		c = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(l.width, l.height), vgimg.UseDPI(plotDPI))}
	default:
		return nil, fmt.Errorf("plot format %q: want one of %s", format, strings.Join(plotFormats, ", "))
	}
	drawLatencyPlot(draw.New(c), p, figs, l)
	var b bytes.Buffer
	if _, err := c.WriteTo(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// writeLatencyPlot draws p to file, in the format of its extension.
func writeLatencyPlot(file string, p latencyPlot) error {
	format, err := plotFormatOf(file)
	if err != nil {
		return err
	}
	data, err := renderLatencyPlot(p, format)
	if err != nil {
		return err
	}
	return os.WriteFile(file, data, 0o644)
}

func drawLatencyPlot(c draw.Canvas, p latencyPlot, figs []panelFigure, l plotLayout) {
	c.FillPolygon(color.White, []vg.Point{c.Min, {X: c.Max.X, Y: c.Min.Y}, c.Max, {X: c.Min.X, Y: c.Max.Y}})
	fromTop := func(d vg.Length) vg.Length { return l.height - d }
	c.FillText(textStyle(boldFont, 13, inkColour), vg.Point{X: marginX, Y: fromTop(titleBottom)}, p.Title)
	sub := textStyle(sansFont, 9, noteColour)
	for i, line := range p.Subtitle {
		c.FillText(sub, vg.Point{X: marginX, Y: fromTop(subtitleFirst + lineHeight*vg.Length(i))}, line)
	}
	if len(figs) == 0 {
		return
	}
	plots := make([][]*plot.Plot, len(figs))
	for i, f := range figs {
		plots[i] = []*plot.Plot{f.plot}
	}
	canvases := plot.Align(plots, l.tiles, c)
	title := textStyle(boldFont, 10.5, inkColour)
	for i, f := range figs {
		// The head first, then the plot: a reader of the SVG meets each
		// panel's texts together.
		area := f.plot.DataCanvas(canvases[i][0])
		headTop := l.tiles.At(c, 0, i).Max.Y + l.headH
		c.FillText(title, vg.Point{X: area.Min.X, Y: headTop - panelTitleH + 4}, p.Panels[i].Title)
		f.legend.Draw(draw.Canvas{Canvas: c.Canvas, Rectangle: vg.Rectangle{
			Min: vg.Point{X: area.Min.X, Y: headTop - l.headH},
			Max: vg.Point{X: area.Max.X, Y: headTop - panelTitleH},
		}})
		f.plot.Draw(canvases[i][0])
	}
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
