package server

import (
	"log/slog"
	"strings"
	"testing"
)

func TestLogFormat(t *testing.T) {
	for _, tt := range []struct{ format, want string }{
		{"json", `"msg":"hello"`},
		{"text", `msg=hello`},
	} {
		var b strings.Builder
		newLogger(&b, &Config{LogFormat: tt.format}).Info("hello")
		if !strings.Contains(b.String(), tt.want) {
			t.Errorf("--log-format %s wrote %q; want it to contain %q", tt.format, b.String(), tt.want)
		}
	}
	var b strings.Builder
	newLogger(&b, &Config{LogFormat: "text", LogLevel: slog.LevelWarn}).Info("quiet")
	if b.Len() != 0 {
		t.Errorf("info logged at --log-level warn: %q", b.String())
	}
	c := DefaultConfig()
	c.LogFormat = "xml"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "--log-format") {
		t.Fatalf("bad --log-format: %v", err)
	}
}
