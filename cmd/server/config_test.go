package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kvstore/server"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kvstore.toml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConfigPrecedence: flags > env > file > defaults, setting by setting.
func TestConfigPrecedence(t *testing.T) {
	file := writeConfig(t, `
listen = "127.0.0.1:1"
expire-interval = "2s"
max-key-bytes = 10
shutdown-grace = "7s"
`)
	env := map[string]string{
		"KVSTORE_CONFIG":        file,
		"KVSTORE_MAX_KEY_BYTES": "20",
		"KVSTORE_LISTEN":        "127.0.0.1:2",
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	m := NewMain()
	if err := m.ParseFlags([]string{"--listen", "127.0.0.1:3"}); err != nil {
		t.Fatal(err)
	}
	c := m.Config
	for _, check := range []struct {
		name      string
		got, want any
	}{
		{"listen (flag over env and file)", c.Listen, "127.0.0.1:3"},
		{"max-key-bytes (env over file)", c.MaxKeyBytes, server.ByteSize(20)},
		{"expire-interval (file over default)", c.ExpireInterval, 2 * time.Second},
		{"shutdown-grace (file over default)", c.ShutdownGrace, 7 * time.Second},
		{"max-value-bytes (default)", c.MaxValueBytes, server.ByteSize(1 << 20)},
	} {
		if check.got != check.want {
			t.Errorf("%s = %v; want %v", check.name, check.got, check.want)
		}
	}
}

func TestConfigFileErrorsNameTheSetting(t *testing.T) {
	tests := []struct {
		name, text, want string
	}{
		{"unknown key", "bogus = 1\n", `"bogus" not defined`},
		{"bad duration", "expire-interval = \"soon\"\n", `"expire-interval"`},
		{"impossible limit", "max-key-bytes = 0\n", "--max-key-bytes 0 is out of range"},
		{"bad policy", "fsync = \"sometimes\"\n", `"fsync"`},
		{"not toml", "listen = \n", "error parsing TOML"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMain()
			err := m.ParseFlags([]string{"--config", writeConfig(t, tt.text)})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v; want it to contain %q", err, tt.want)
			}
		})
	}
	m := NewMain()
	if err := m.ParseFlags([]string{"--config", "/nonexistent/kvstore.toml"}); err == nil {
		t.Fatal("a missing config file was accepted")
	}
}

// TestExampleConfig keeps docs/kvstore.example.toml in step with the
// flags: it must parse, and set every setting there is.
func TestExampleConfig(t *testing.T) {
	example := filepath.Join("..", "..", "docs", "kvstore.example.toml")
	m := NewMain()
	if err := m.ParseFlags([]string{"--config", example}); err != nil {
		t.Fatalf("example config: %v", err)
	}
	text, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	m.flags.VisitAll(func(f *flag.Flag) {
		if f.Name == "config" || f.Name == "print-config" {
			return
		}
		if !strings.Contains(string(text), "\n"+f.Name+" = ") {
			t.Errorf("docs/kvstore.example.toml lacks %s", f.Name)
		}
	})
}

// TestPrintConfigRoundTrips: what --print-config prints is a config file
// that gives the same configuration back.
func TestPrintConfigRoundTrips(t *testing.T) {
	m := NewMain()
	args := []string{"--fsync", "everysec", "--max-key-bytes", "77", "--listen", "127.0.0.1:9", "--log-format", "json", "--no-final-snapshot"}
	if err := m.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := m.WriteConfig(&out); err != nil {
		t.Fatal(err)
	}
	m2 := NewMain()
	if err := m2.ParseFlags([]string{"--config", writeConfig(t, out.String())}); err != nil {
		t.Fatalf("printed config does not parse: %v\n%s", err, out.String())
	}
	if m.Config != m2.Config {
		t.Fatalf("round trip changed the config:\n%+v\n%+v", m.Config, m2.Config)
	}
}

// TestEverySettingTakesUnits: every size flag is a server.ByteSize (takes
// 64MiB, prints with the unit) and every duration flag a durationValue
// (refuses a bare number, saying what to write), so none is left behind
// taking only bytes or saying "parse error".
func TestEverySettingTakesUnits(t *testing.T) {
	m := NewMain()
	if err := m.ParseFlags(nil); err != nil {
		t.Fatal(err)
	}
	var sizes []string
	m.flags.VisitAll(func(f *flag.Flag) {
		switch v := f.Value.(type) {
		case *server.ByteSize:
			sizes = append(sizes, f.Name)
			if err := v.Set("4MiB"); err != nil || v.String() != "4MiB" {
				t.Errorf("--%s 4MiB: %v, prints %s", f.Name, err, v)
			}
		case *durationValue:
			if err := v.Set("30"); err == nil || !strings.Contains(err.Error(), "want a duration like 30s") {
				t.Errorf("--%s 30: %v", f.Name, err)
			}
		default:
			if g, ok := f.Value.(flag.Getter); ok {
				if _, isDuration := g.Get().(time.Duration); isDuration {
					t.Errorf("--%s is a %T, not a durationValue", f.Name, f.Value)
				}
			}
			if strings.HasSuffix(f.Name, "-bytes") || strings.Contains(f.Name, "memory") || strings.Contains(f.Name, "heap") {
				t.Errorf("--%s is a %T, not a server.ByteSize", f.Name, f.Value)
			}
		}
	})
	want := "gc-heap-floor max-key-bytes max-memory max-value-bytes wal-prealloc-bytes wal-segment-bytes"
	if got := strings.Join(sizes, " "); got != want {
		t.Errorf("size flags %s; want %s", got, want)
	}
}

// TestREADMEPrintConfig keeps README's --print-config sample the real
// output (issue 13): the command line of the fenced block that starts
// with "$ ... kvstore-server --print-config" is parsed (leading NAME=value
// words are environment) and run through ParseFlags and WriteConfig, and
// the rest of the block must be exactly what that prints.
func TestREADMEPrintConfig(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var block []string
	for _, b := range strings.Split(string(readme), "\n```")[1:] {
		lines := strings.Split(b, "\n")
		if len(lines) > 1 && strings.HasPrefix(lines[1], "$ ") && strings.Contains(lines[1], "kvstore-server --print-config") {
			block = lines[1:]
			break
		}
	}
	if block == nil {
		t.Fatal("README.md has no fenced block starting with \"$ ... kvstore-server --print-config\"")
	}
	words, err := shellWords(strings.TrimPrefix(block[0], "$ "))
	if err != nil {
		t.Fatalf("%s: %v", block[0], err)
	}
	for len(words) > 0 && strings.Contains(words[0], "=") {
		k, v, _ := strings.Cut(words[0], "=")
		t.Setenv(k, v)
		words = words[1:]
	}
	if len(words) == 0 || words[0] != "kvstore-server" {
		t.Fatalf("%s: want [ENV=value ...] kvstore-server ARGS", block[0])
	}
	m := NewMain()
	if err := m.ParseFlags(words[1:]); err != nil || !m.PrintConfig {
		t.Fatalf("%s: %v (print-config %v)", block[0], err, m.PrintConfig)
	}
	var out strings.Builder
	if err := m.WriteConfig(&out); err != nil {
		t.Fatal(err)
	}
	if want := strings.Join(block[1:], "\n") + "\n"; out.String() != want {
		t.Fatalf("README.md's sample after %q:\n%s\nthe command prints:\n%s", block[0], want, out.String())
	}
}

// shellWords splits a command line the way sh would for the README's
// samples: words separated by spaces, "..." and '...' quoting.
func shellWords(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ' ', '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case '"', '\'':
			end := strings.IndexByte(s[i+1:], c)
			if end < 0 {
				return nil, fmt.Errorf("unclosed %c", c)
			}
			w.WriteString(s[i+1 : i+1+end])
			i += end + 1
			inWord = true
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}
