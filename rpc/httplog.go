package rpc

import (
	"context"
	"log"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/benbjohnson/clock"
)

// HTTPErrorLogLimit is how many lines of net/http's error log
// NewHTTPErrorLog passes on per second. A client that fails its TLS
// handshake in a loop would otherwise write a line per attempt.
const HTTPErrorLogLimit = 10

// NewHTTPErrorLog returns the logger for http.Server.ErrorLog: net/http's
// own messages (failed TLS handshakes above all) go to logger as WARN
// records, in its format, instead of plain text on stderr. A failed
// handshake becomes "TLS handshake failed" with the client's address and
// the error as attributes. At most HTTPErrorLogLimit lines go out in a
// second (timed by clk, nil for the real clock); the first line after
// some were dropped carries their number as "suppressed".
//
// gRPC needs no such adapter: grpc-go reports failed handshakes at info
// level through grpclog, whose default logger discards them.
func NewHTTPErrorLog(logger *slog.Logger, clk clock.Clock) *log.Logger {
	if clk == nil {
		clk = clock.New()
	}
	return log.New(&httpErrorLog{logger: logger, clock: clk}, "", 0)
}

// httpErrorLog is the io.Writer under NewHTTPErrorLog's logger, which
// calls Write once per message.
type httpErrorLog struct {
	logger *slog.Logger
	clock  clock.Clock

	mu        sync.Mutex
	window    time.Time // start of the current second
	passed    int       // lines passed on in it
	dropped   int       // lines dropped since the last one passed on
	hasWindow bool
}

const tlsHandshakePrefix = "http: TLS handshake error from "

func (w *httpErrorLog) Write(p []byte) (int, error) {
	now := w.clock.Now()
	w.mu.Lock()
	if !w.hasWindow || now.Sub(w.window) >= time.Second {
		w.window, w.passed, w.hasWindow = now, 0, true
	}
	if w.passed >= HTTPErrorLogLimit {
		w.dropped++
		w.mu.Unlock()
		return len(p), nil
	}
	w.passed++
	dropped := w.dropped
	w.dropped = 0
	w.mu.Unlock()

	text := strings.TrimSuffix(string(p), "\n")
	msg, attrs := "HTTP server error", []slog.Attr{slog.String("err", text)}
	if rest, ok := strings.CutPrefix(text, tlsHandshakePrefix); ok {
		// "ADDR: ERROR"; an address, IPv6 included, has no ": ".
		if addr, err, ok := strings.Cut(rest, ": "); ok {
			msg, attrs = "TLS handshake failed", []slog.Attr{slog.String("remote", addr), slog.String("err", err)}
		}
	}
	if dropped > 0 {
		attrs = append(attrs, slog.Int("suppressed", dropped))
	}
	w.logger.LogAttrs(context.Background(), slog.LevelWarn, msg, attrs...)
	return len(p), nil
}
