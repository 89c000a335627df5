package actor

import (
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of testdata/machine scripts")

// TestMachineScripts runs the scripts in testdata/machine against a fresh
// Machine each. A script is blocks separated by blank lines: a directive
// line, input lines, "----", and the output the block must print.
//
//	rules key=N value=N memory=N batch=N   new Machine with those Rules
//	apply at=SEC                           one batch of the input lines:
//	  set KEY VALUE [deadline=SEC]           (a Set, SEC in whole seconds)
//	  get KEY | del KEY | op=N KEY
//	expire at=SEC                          one bounded pass
//	state                                  every key, sorted, and counts
//
// go test ./actor -run TestMachineScripts -rewrite rewrites the outputs.
func TestMachineScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/machine/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			got := runScript(t, string(data))
			if *rewrite {
				if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if got != string(data) {
				t.Errorf("output differs; run with -rewrite and diff. got:\n%s", got)
			}
		})
	}
}

// runScript returns the script with every block's output recomputed.
func runScript(t *testing.T, script string) string {
	var out strings.Builder
	m := NewMachine(nil, 0, Rules{})
	for _, block := range strings.Split(strings.TrimSpace(script), "\n\n") {
		lines := strings.Split(block, "\n")
		var input []string
		for _, l := range lines[1:] {
			if l == "----" {
				break
			}
			input = append(input, l)
		}
		out.WriteString(strings.Join(append(lines[:1:1], input...), "\n"))
		out.WriteString("\n----\n")
		for _, l := range runBlock(t, &m, lines[0], input) {
			out.WriteString(l + "\n")
		}
		out.WriteString("\n")
	}
	return strings.TrimSuffix(out.String(), "\n")
}

func runBlock(t *testing.T, m **Machine, directive string, input []string) []string {
	t.Helper()
	name, args := parseLine(t, directive)
	switch name {
	case "rules":
		*m = NewMachine(nil, 0, Rules{
			MaxKeyBytes:   int(args.num(t, "key")),
			MaxValueBytes: int(args.num(t, "value")),
			MaxMemory:     args.num(t, "memory"),
			ExpireBatch:   int(args.num(t, "batch")),
		})
		return nil
	case "apply":
		var cmds []Command
		for _, l := range input {
			cmds = append(cmds, parseCommand(t, l))
		}
		apply := (*m).Apply
		if args["each"] != "" {
			apply = (*m).ApplyEach
		}
		res, recs, err := apply(args.num(t, "at")*sec, cmds, nil, nil)
		if err != nil {
			return []string{"error: " + err.Error()}
		}
		var out []string
		for i, r := range res {
			out = append(out, formatResult(cmds[i], r))
		}
		for _, r := range recs {
			out = append(out, formatRecord(r))
		}
		return out
	case "expire":
		removed, more := (*m).Expire(args.num(t, "at") * sec)
		return []string{fmt.Sprintf("removed %d, more %v", removed, more)}
	case "state":
		return formatState(*m)
	}
	t.Fatalf("unknown directive %q", directive)
	return nil
}

type scriptArgs map[string]string

func (a scriptArgs) num(t *testing.T, k string) int64 {
	t.Helper()
	if a[k] == "" {
		return 0
	}
	n, err := strconv.ParseInt(a[k], 10, 64)
	if err != nil {
		t.Fatalf("%s=%q: %v", k, a[k], err)
	}
	return n
}

// parseLine splits "name pos... k=v..." into the name and the k=v
// arguments; positional words are returned under "1", "2", ….
func parseLine(t *testing.T, line string) (string, scriptArgs) {
	t.Helper()
	f := strings.Fields(line)
	if len(f) == 0 {
		t.Fatalf("empty line")
	}
	args := scriptArgs{}
	pos := 0
	for _, w := range f[1:] {
		if k, v, ok := strings.Cut(w, "="); ok {
			args[k] = v
			continue
		}
		pos++
		args[strconv.Itoa(pos)] = w
	}
	return f[0], args
}

func parseCommand(t *testing.T, line string) Command {
	t.Helper()
	name, args := parseLine(t, line)
	c := Command{Key: args["1"], Deadline: args.num(t, "deadline") * sec}
	for _, f := range strings.Split(args["flags"], ",") {
		fl, ok := map[string]Flags{"": 0, "nx": FlagNX, "xx": FlagXX, "gt": FlagGT, "lt": FlagLT, "get": FlagGet,
			"keepttl": FlagKeepTTL, "rel": FlagRelative, "persist": FlagPersist}[f]
		if !ok {
			t.Fatalf("unknown flag %q in %q", f, line)
		}
		c.Flags |= fl
	}
	switch name {
	case "set":
		c.Op, c.Value = OpSet, args["2"]
	case "get":
		c.Op = OpGet
	case "del":
		c.Op = OpDelete
	case "incr":
		c.Op, c.Delta = OpIncr, args.num(t, "by")
	case "incrfloat":
		c.Op, c.Value = OpIncrFloat, args["2"]
	case "append":
		c.Op, c.Value = OpAppend, args["2"]
	case "setrange":
		c.Op, c.Delta, c.Value = OpSetRange, args.num(t, "at"), args["2"]
	case "expire":
		c.Op = OpExpire
	case "persist":
		c.Op = OpPersist
	case "getex":
		c.Op = OpGetEx
	case "unit":
		c.Op, c.Delta = OpUnit, args.num(t, "n")
	case "flush":
		c.Op = OpFlush
	case "op":
		c.Op = Op(args.num(t, "n"))
	default:
		t.Fatalf("unknown command %q", line)
	}
	return c
}

func formatResult(c Command, r Result) string {
	name := map[Op]string{OpGet: "get", OpSet: "set", OpDelete: "del", OpIncr: "incr", OpIncrFloat: "incrfloat",
		OpAppend: "append", OpSetRange: "setrange", OpExpire: "expire", OpPersist: "persist", OpGetEx: "getex", OpUnit: "unit", OpFlush: "flush"}[c.Op]
	s := name + " " + c.Key + ": "
	if r.Err != nil {
		return s + "error: " + r.Err.Error()
	}
	old := ""
	if c.Flags&FlagGet != 0 {
		old = " (old: not found)"
		if r.OldFound {
			old = fmt.Sprintf(" (old %q)", r.Value)
		}
	}
	switch c.Op {
	case OpGet, OpGetEx:
		if !r.Found {
			return s + "not found"
		}
		if r.Deadline != 0 {
			return s + fmt.Sprintf("%q deadline=%d", r.Value, r.Deadline/sec)
		}
		return s + fmt.Sprintf("%q", r.Value)
	case OpUnit:
		if !r.Found {
			return s + "skipped"
		}
		return s + "applied"
	case OpFlush:
		return s + strconv.FormatInt(r.Int, 10) + " live"
	case OpDelete, OpExpire, OpPersist:
		return s + fmt.Sprintf("found %v", r.Found) + old
	case OpSet:
		if !r.Found {
			return s + "skipped" + old
		}
		return s + "ok" + old
	case OpIncr, OpAppend, OpSetRange:
		return s + strconv.FormatInt(r.Int, 10)
	case OpIncrFloat:
		return s + r.Value
	}
	return s + "?"
}

func formatRecord(r Record) string {
	if r.Op == OpDelete {
		return fmt.Sprintf("record %d: del %s", r.Seq, r.Key)
	}
	s := fmt.Sprintf("record %d: set %s %q", r.Seq, r.Key, r.Value)
	if r.Deadline != 0 {
		s += fmt.Sprintf(" deadline=%d", r.Deadline/sec)
	}
	return s
}

// formatState lists m's entries sorted by key, then its counts.
func formatState(m *Machine) []string {
	st := m.State()
	v := st.Freeze()
	defer v.Release()
	var out []string
	v.Range(func(k, val string, deadline int64) bool {
		l := fmt.Sprintf("%s %q", k, val)
		if deadline != 0 {
			l += fmt.Sprintf(" deadline=%d", deadline/sec)
		}
		out = append(out, l)
		return true
	})
	slices.Sort(out)
	return append(out, fmt.Sprintf("keys %d, with ttl %d, expired %d, bytes %d, seq %d",
		st.Len(), st.TTLLen(), st.Expired(), st.Bytes(), m.Seq()))
}

// TestMachineExpireDeterministic is the regression test for a bounded
// Expire whose choice depended on map order: two machines given the same
// keys in different orders (and so with different map layouts and
// hash seeds) must remove the same keys, pass by pass.
func TestMachineExpireDeterministic(t *testing.T) {
	const n = 1000
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%04d", i)
	}
	var traces [2][]string
	for run := range traces {
		m := NewMachine(nil, 0, Rules{ExpireBatch: 7})
		order := slices.Clone(keys)
		rand.New(rand.NewPCG(uint64(run), 1)).Shuffle(n, func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, k := range order {
			// Deadlines spread inside two seconds, so both the sorted
			// order and the whole-second path are used.
			i, _ := strconv.Atoi(k[1:])
			deadline := 10*sec + int64(i%3)*sec/3 + int64(i%2)*sec
			if _, _, err := m.Apply(0, []Command{{Op: OpSet, Key: k, Value: "v", Deadline: deadline}}, nil, nil); err != nil {
				t.Fatal(err)
			}
		}
		var trace []string
		for pass := 0; ; pass++ {
			if pass == 3 { // between passes, a removal and a re-set into the draining second
				if _, _, err := m.Apply(0, []Command{{Op: OpDelete, Key: "k0999"}, {Op: OpSet, Key: "k0000", Value: "w", Deadline: 10 * sec}}, nil, nil); err != nil {
					t.Fatal(err)
				}
			}
			removed, more := m.Expire(20 * sec)
			trace = append(trace, fmt.Sprintf("pass %d removed %d, left: %s", pass, removed, strings.Join(formatState(m), ", ")))
			if !more {
				break
			}
		}
		if m.State().Len() != 0 {
			t.Fatalf("run %d: %d keys left after expiry", run, m.State().Len())
		}
		traces[run] = trace
	}
	for i := range min(len(traces[0]), len(traces[1])) {
		if traces[0][i] != traces[1][i] {
			t.Fatalf("the same keys inserted in another order expired differently:\n%.300s\nvs\n%.300s", traces[0][i], traces[1][i])
		}
	}
	if len(traces[0]) != len(traces[1]) {
		t.Fatalf("%d passes vs %d", len(traces[0]), len(traces[1]))
	}
}

// TestMachineRefusedBatchChangesNothing: every way Apply refuses a batch
// leaves the state, the sequence number and the caller's slices as they
// were, whatever commands came before the bad one.
func TestMachineRefusedBatchChangesNothing(t *testing.T) {
	storage := errors.New("log failed")
	tests := []struct {
		name  string
		rules Rules
		setup func(m *Machine)
		bad   Command
		want  error
	}{
		{"unknown op", Rules{}, nil, Command{Op: 200, Key: "x"}, ErrBadCommand},
		{"key too long", Rules{MaxKeyBytes: 3}, nil, Command{Op: OpDelete, Key: "long"}, ErrTooLarge},
		{"value too long", Rules{MaxValueBytes: 3}, nil, Command{Op: OpSet, Key: "x", Value: "long"}, ErrTooLarge},
		{"memory", Rules{MaxMemory: 200}, nil, Command{Op: OpSet, Key: "x", Value: strings.Repeat("v", 100)}, ErrMemoryLimit},
		{"writes refused", Rules{}, func(m *Machine) { m.RefuseWrites(storage) }, Command{Op: OpSet, Key: "x", Value: "v"}, storage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMachine(nil, 5, tt.rules)
			if _, _, err := m.Apply(0, []Command{{Op: OpSet, Key: "a", Value: "1"}}, nil, nil); err != nil {
				t.Fatal(err)
			}
			if tt.setup != nil {
				tt.setup(m)
			}
			before := formatState(m)
			res, recs := make([]Result, 1, 4), make([]Record, 2, 4)
			gotRes, gotRecs, err := m.Apply(0, []Command{{Op: OpSet, Key: "b", Value: "2"}, {Op: OpDelete, Key: "a"}, tt.bad}, res, recs)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Apply = %v; want %v", err, tt.want)
			}
			if len(gotRes) != 1 || len(gotRecs) != 2 {
				t.Fatalf("refused Apply returned %d results, %d records; want the slices as given (1, 2)", len(gotRes), len(gotRecs))
			}
			if after := formatState(m); !slices.Equal(before, after) {
				t.Fatalf("refused batch changed the state:\n%v\n%v", before, after)
			}
			// Reads go on whatever the refusal.
			if res, _, err := m.Apply(0, []Command{{Op: OpGet, Key: "a"}}, nil, nil); err != nil || !res[0].Found {
				t.Fatalf("read after a refusal = %v, %v", res, err)
			}
		})
	}
}

// TestMachineSameInputSameOutput replays a random workload on two
// machines and checks every result, record and the final state agree.
func TestMachineSameInputSameOutput(t *testing.T) {
	run := func() []string {
		rng := rand.New(rand.NewPCG(7, 7))
		m := NewMachine(nil, 0, Rules{ExpireBatch: 3, MaxMemory: 4000})
		var out []string
		for i := range 2000 {
			now := int64(i) * sec / 10
			if i%50 == 0 {
				removed, more := m.Expire(now)
				out = append(out, fmt.Sprintf("expire %d %v", removed, more))
			}
			var cmds []Command
			for range 1 + rng.IntN(3) {
				c := Command{Key: fmt.Sprintf("k%d", rng.IntN(40))}
				switch rng.IntN(3) {
				case 0:
					c.Op = OpGet
				case 1:
					c.Op, c.Value = OpSet, strings.Repeat("v", rng.IntN(50))
					if rng.IntN(2) == 0 {
						c.Deadline = now + rng.Int64N(5*sec)
					}
				default:
					c.Op = OpDelete
				}
				cmds = append(cmds, c)
			}
			res, recs, err := m.Apply(now, cmds, nil, nil)
			out = append(out, fmt.Sprint(res, recs, err))
		}
		return append(out, formatState(m)...)
	}
	a, b := run(), run()
	if !slices.Equal(a, b) {
		t.Fatal("the same workload gave different results")
	}
}

// BenchmarkMachineApply measures one single-command batch through the
// Machine alone: the rules' own cost, with no goroutine hand-off.
func BenchmarkMachineApply(b *testing.B) {
	for _, op := range []Op{OpGet, OpSet} {
		b.Run(map[Op]string{OpGet: "get", OpSet: "set"}[op], func(b *testing.B) {
			m := NewMachine(nil, 0, Rules{MaxKeyBytes: 1 << 10, MaxValueBytes: 1 << 20, MaxMemory: 1 << 40})
			var cmd [1]Command
			var res [1]Result
			recs := make([]Record, 0, 1)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				cmd[0] = Command{Op: op, Key: benchKeyNames[i%benchKeys], Value: "value"}
				if _, _, err := m.Apply(0, cmd[:], res[:0], recs[:0]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// TestMachineApplyAllocs: a single-key batch through the Machine, into
// slices with room, allocates nothing once the key exists.
func TestMachineApplyAllocs(t *testing.T) {
	m := NewMachine(nil, 0, Rules{MaxKeyBytes: 1 << 10, MaxValueBytes: 1 << 20, MaxMemory: 1 << 40})
	var res [1]Result
	recs := make([]Record, 0, 1)
	for _, c := range []Command{{Op: OpSet, Key: "k", Value: "v"}, {Op: OpGet, Key: "k"}, {Op: OpDelete, Key: "absent"}} {
		if _, _, err := m.Apply(0, []Command{c}, nil, nil); err != nil { // warm: the key exists
			t.Fatal(err)
		}
		cmds := []Command{c}
		if n := testing.AllocsPerRun(100, func() {
			if _, _, err := m.Apply(0, cmds, res[:0], recs[:0]); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("op %d: %v allocations per Apply; want 0", c.Op, n)
		}
	}
}
