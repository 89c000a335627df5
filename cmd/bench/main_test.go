package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// childEnvVar makes the test binary act as kvstore-bench itself, so that
// startChild can be tested with a real child process.
const childEnvVar = "KVB_TEST_RUN_AS_BENCH"

func TestMain(m *testing.M) {
	if os.Getenv(childEnvVar) != "" {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	// The command reads KVSTORE_BENCH_* itself: a developer's own settings
	// must not change what the tests run. Tests that want one use t.Setenv.
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, envPrefix+"_") {
			os.Unsetenv(name)
		}
	}
	goleak.VerifyTestMain(m)
}

// runBench runs the command in-process and returns its exit code and
// output.
func runBench(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestBadFlagsExit2WithReason(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--clients", "0"}, "--clients must be at least 1"},
		{[]string{"--conns", "0"}, "--conns must be at least 1"},
		{[]string{"--duration", "0s"}, "--duration must be positive"},
		{[]string{"--duration", "1s", "--requests", "5"}, "either --duration or --requests"},
		{[]string{"--requests", "-1"}, "--requests must not be negative"},
		{[]string{"--keys", "0"}, "--keys must be at least 1"},
		{[]string{"--value-size", "-1"}, "--value-size must not be negative"},
		{[]string{"--mix", "50:50:0:1"}, "set:get:del"},
		{[]string{"--mix", "0:0:0"}, "at least one weight"},
		{[]string{"--mix", "a:1"}, "not a non-negative integer"},
		{[]string{"--mix", "-1:2"}, "not a non-negative integer"},
		{[]string{"--ttl", "1500ms"}, "whole number of seconds"},
		{[]string{"--ttl", "-1s"}, "whole number of seconds"},
		{[]string{"--ttl-fraction", "1.5"}, "--ttl-fraction must be between 0 and 1"},
		{[]string{"--ttl-fraction", "NaN"}, "--ttl-fraction must be between 0 and 1"},
		{[]string{"--dist", "normal"}, "uniform or zipf"},
		{[]string{"--zipf-s", "1"}, "--zipf-s must be greater than 1"},
		{[]string{"--rate", "-5"}, "--rate must be between"},
		{[]string{"--timeout", "0s"}, "--timeout must be positive"},
		{[]string{"--give-up", "-1s"}, "--give-up must not be negative"},
		{[]string{"--give-up", "5"}, `want a duration like 30s, got "5"`},
		{[]string{"--progress", "-1s"}, "--progress must not be negative"},
		{[]string{"--rounds", "0", "--compare"}, "--rounds must be at least 1"},
		{[]string{"--addr", ""}, "--addr must not be empty"},
		{[]string{"--inproc", "--compare"}, "exclude each other"},
		{[]string{"--plot", "x.svg"}, "use it with --compare"},
		{[]string{"--inproc", "--plot", "x.png"}, "use it with --compare"},
		{[]string{"--svg", "x.svg"}, "use it with --compare"},
		{[]string{"--compare", "--plot", "x.pdf"}, "x.pdf: want a file name ending in .svg or .png"},
		{[]string{"--compare", "--svg", "latency"}, "want a file name ending in .svg or .png"},
		{[]string{"--workloads", "set"}, "use it with --compare"},
		{[]string{"--compare", "--workloads", "set,puts"}, `unknown workload "puts"`},
		{[]string{"--compare", "--workloads", ""}, `unknown workload ""`},
		{[]string{"--inproc", "--serve-baseline", "127.0.0.1:0"}, "exclude each other"},
		{[]string{"--clients", "x"}, "invalid value"},
		{[]string{"--nope"}, "not defined"},
		{[]string{"--duration", "10"}, `want a duration like 30s, got "10"`},
		{[]string{"--timeout", "5"}, `want a duration like 30s, got "5"`},
		{[]string{"--ttl", "30"}, `want a duration like 30s, got "30"`},
		{[]string{"--progress", "1"}, `want a duration like 30s, got "1"`},
		{[]string{"extra"}, `unexpected argument "extra"`},
	} {
		code, out, errOut := runBench(t, tc.args...)
		if code != exitUsage || out != "" || !strings.Contains(errOut, tc.want) || !strings.Contains(errOut, "--help") {
			t.Errorf("%q: exit %d, stdout %.100q, stderr %q; want exit 2, no stdout, and %q", tc.args, code, out, errOut, tc.want)
		}
	}
}

func TestEnvironmentSetsFlagsAndFlagsWin(t *testing.T) {
	t.Setenv("KVSTORE_BENCH_CLIENTS", "7")
	t.Setenv("KVSTORE_BENCH_MIX", "1:2:3")
	t.Setenv("KVSTORE_BENCH_KEYS", "10")
	t.Setenv("KVSTORE_BENCH_VALUE_SIZE", "33") // a dashed name
	t.Setenv("KVSTORE_BENCH_PRELOAD", "true")
	t.Setenv("KVSTORE_BENCH_GIVE_UP", "0s")
	cfg, err := parseFlags([]string{"--keys", "20"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Clients != 7 || cfg.Mix != (mix{1, 2, 3}) || cfg.Keys != 20 || cfg.ValueSize != 33 || !cfg.Preload || cfg.GiveUp != 0 {
		t.Errorf("clients %d, mix %v, keys %d, value-size %d, preload %v, give-up %v; want 7, 1:2:3, 20, 33, true, 0s",
			cfg.Clients, cfg.Mix, cfg.Keys, cfg.ValueSize, cfg.Preload, cfg.GiveUp)
	}

	// The server's variables are not the bench's.
	t.Setenv("KVSTORE_CLIENTS", "9")
	if cfg, err := parseFlags(nil, &bytes.Buffer{}); err != nil || cfg.Clients != 7 {
		t.Errorf("with KVSTORE_CLIENTS=9: clients %d, %v; want 7 from KVSTORE_BENCH_CLIENTS", cfg.Clients, err)
	}

	for _, bad := range []struct{ name, value, want string }{
		{"KVSTORE_BENCH_CLIENTS", "many", "parse error"},
		{"KVSTORE_BENCH_DIST", "normal", "uniform or zipf"},
	} {
		t.Run(bad.name, func(t *testing.T) {
			t.Setenv(bad.name, bad.value)
			// --inproc: were the variable ignored, a short run, not a dial.
			code, _, errOut := runBench(t, "--inproc", "--requests", "1", "--progress", "0")
			if code != exitUsage || !strings.Contains(errOut, bad.name) || !strings.Contains(errOut, bad.want) {
				t.Errorf("%s=%s: exit %d, stderr %q; want exit 2 naming the variable and %q", bad.name, bad.value, code, errOut, bad.want)
			}
		})
	}
	// The command line wins even over a variable that would not parse:
	// ff does not read the variable of a flag that args set.
	t.Setenv("KVSTORE_BENCH_CLIENTS", "many")
	if _, err := parseFlags([]string{"--clients", "3"}, &bytes.Buffer{}); err != nil {
		t.Errorf("--clients 3 with KVSTORE_BENCH_CLIENTS=many: %v; want the flag to win", err)
	}
}

// TestUsageErrorIsOneLineThenAPointer is the regression test for ff's
// "error parsing commandline arguments: " before every flag error: the
// error comes first, alone, then one line pointing at --help.
func TestUsageErrorIsOneLineThenAPointer(t *testing.T) {
	code, out, errOut := runBench(t, "--nope")
	want := "kvstore-bench: flag provided but not defined: -nope\nRun 'kvstore-bench --help' for usage.\n"
	if code != exitUsage || out != "" || errOut != want {
		t.Errorf("exit %d, stdout %q, stderr %q; want 2 and %q", code, out, errOut, want)
	}
}

// kvstore-bench help is --help, as for the other tools.
func TestHelpCommand(t *testing.T) {
	code, out, errOut := runBench(t, "help")
	if code != exitOK || !strings.HasPrefix(out, "Usage: kvstore-bench") || errOut != "" {
		t.Errorf("help: exit %d, stderr %q, stdout %.80q; want 0 and the usage", code, errOut, out)
	}
}

func TestHelpDocumentsEveryFlag(t *testing.T) {
	code, out, _ := runBench(t, "--help")
	if code != exitOK {
		t.Fatalf("--help: exit %d", code)
	}
	for _, name := range []string{"addr", "clients", "conns", "duration", "requests", "keys", "value-size", "mix",
		"ttl", "ttl-fraction", "dist", "zipf-s", "preload", "rate", "timeout", "give-up", "seed", "progress", "json", "inproc", "etcd",
		"serve-baseline", "compare", "rounds", "server-bin", "server-args", "plot", "svg"} {
		if !strings.Contains(out, "  -"+name+" ") && !strings.Contains(out, "  -"+name+"\n") {
			t.Errorf("--help does not document --%s", name)
		}
		if !strings.Contains(out, envName(name)) {
			t.Errorf("--help does not name %s", envName(name))
		}
	}
	for _, want := range []string{"coordinated", "Exit status", "3 when the run stopped at --give-up", "TLS mismatch", "--inproc", "--serve-baseline", "--compare", "0:100:0", "preloaded"} {
		if !strings.Contains(out, want) {
			t.Errorf("--help does not mention %q", want)
		}
	}
}

// A mistyped --plot directory stops --compare before it starts a server.
func TestCompareChecksThePlotDirectoryFirst(t *testing.T) {
	file := filepath.Join(t.TempDir(), "no-such-dir", "compare.png")
	code, out, errOut := runBench(t, "--compare", "--server-bin", "/nonexistent/kvstore-server", "--plot", file)
	if code != exitFailed || out != "" || !strings.Contains(errOut, "--plot: ") || strings.Contains(errOut, "kvstore-server") {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 on --plot alone", code, out, errOut)
	}
}

// --svg, the old name of --plot, still sets the plot file (make
// bench-compare uses it), of either format.
func TestSVGFlagIsTheOldNameOfPlot(t *testing.T) {
	for _, file := range []string{"docs/latency.svg", "docs/latency.png"} {
		cfg, err := parseFlags([]string{"--compare", "--svg", file}, &bytes.Buffer{})
		if err != nil || cfg.Plot != file {
			t.Errorf("--svg %s: plot %q, %v", file, cfg.Plot, err)
		}
	}
}

func TestDefaults(t *testing.T) {
	cfg, err := parseFlags(nil, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	want := config{Addr: "localhost:50051", Clients: 50, Conns: 4, Keys: 100_000, ValueSize: 16, Mix: mix{50, 50, 0},
		Dist: distUniform, ZipfS: 1.1, TTLFraction: 1, Rounds: 3, Seed: 1, GiveUp: 5 * time.Second}
	got := cfg
	got.Duration, got.Timeout, got.Progress = 0, 0, 0
	if !reflect.DeepEqual(got, want) {
		t.Errorf("defaults %+v\nwant %+v", got, want)
	}
	if n := len(cfg.scenarios()); n != len(compareScenarios) {
		t.Errorf("--compare runs %d workloads by default, want all %d", n, len(compareScenarios))
	}
}
