package main

import (
	"flag"
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
