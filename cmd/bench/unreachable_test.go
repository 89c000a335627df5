package main

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var errRefusedForTest = status.Error(codes.Unavailable, "connection refused")

// stepTarget hands every call to the test: a call announces itself on
// calls and returns the error the test sends on results. With one client,
// the arrival of a call means the one before it has been recorded.
type stepTarget struct {
	calls   chan struct{}
	results chan error
}

func newStepTarget() *stepTarget {
	return &stepTarget{calls: make(chan struct{}), results: make(chan error)}
}

func (s *stepTarget) call() error {
	s.calls <- struct{}{}
	return <-s.results
}

func (s *stepTarget) Set(context.Context, string, string, int64) error { return s.call() }

func (s *stepTarget) Get(context.Context, string) (bool, error) {
	err := s.call()
	return err == nil, err
}

func (s *stepTarget) Delete(context.Context, string) (bool, error) { return false, s.call() }

// step waits for the next call of the run, advances the mock clock by
// advance and ends the call with err, at the new time. It fails the test
// if the run ends instead.
func (s *stepTarget) step(t *testing.T, mock *clock.Mock, ended <-chan struct{}, advance time.Duration, err error) {
	t.Helper()
	select {
	case <-s.calls:
	case <-ended:
		t.Fatalf("the run ended at %v, before a call due then", mock.Now().Sub(time.Unix(0, 0)))
	}
	mock.Add(advance)
	s.results <- err
}

// stepRun starts a one-client run of requests against a stepTarget on a
// mock clock, giving up after giveUp.
func stepRun(giveUp time.Duration, requests int64) (s *stepTarget, mock *clock.Mock, ended chan struct{}, res *result) {
	s, mock, ended, res = newStepTarget(), clock.NewMock(), make(chan struct{}), new(result)
	cfg := testRunConfig(requests, 1, mix{1, 1, 1})
	cfg.giveUp, cfg.clock = giveUp, mock
	go func() {
		*res = runLoad(context.Background(), s, cfg)
		close(ended)
	}()
	return s, mock, ended, res
}

// TestRunGivesUpOnAnUnreachableServer is the regression test for a run
// that went on failing Unavailable at a dead server for all of its
// duration: it stops once the failures have lasted --give-up.
func TestRunGivesUpOnAnUnreachableServer(t *testing.T) {
	s, mock, ended, res := stepRun(5*time.Second, 1000)
	s.step(t, mock, ended, 0, errRefusedForTest) // the stretch begins at 0
	s.step(t, mock, ended, 4*time.Second, errRefusedForTest)
	s.step(t, mock, ended, time.Second-time.Nanosecond, errRefusedForTest)
	s.step(t, mock, ended, time.Nanosecond, errRefusedForTest) // 5s: give up
	select {
	case <-s.calls:
		t.Fatal("a request after the give-up")
	case <-ended:
	}
	total := res.total()
	if res.unreachable != errRefusedForTest || total.failed() != 4 || total.errs[codes.Unavailable] != 4 ||
		res.elapsed != 5*time.Second || res.interrupted {
		t.Errorf("unreachable %v, %d failed (%v), elapsed %v, interrupted %v; want the last error, 4 Unavailable, 5s, not interrupted",
			res.unreachable, total.failed(), total.errs, res.elapsed, res.interrupted)
	}
}

// Any other outcome than Unavailable — a success, or another error —
// starts the wait for --give-up over; 0 never gives up.
func TestRunDoesNotGiveUpOnAServerThatAnswers(t *testing.T) {
	s, mock, ended, res := stepRun(5*time.Second, 7)
	s.step(t, mock, ended, 0, errRefusedForTest)
	s.step(t, mock, ended, 4*time.Second, nil)
	s.step(t, mock, ended, 2*time.Second, errRefusedForTest) // 6s: begins again
	s.step(t, mock, ended, 4*time.Second, errRefusedForTest)
	s.step(t, mock, ended, time.Second, context.DeadlineExceeded)
	s.step(t, mock, ended, 0, errRefusedForTest) // 11s: and again
	s.step(t, mock, ended, 4*time.Second, errRefusedForTest)
	<-ended
	if res.unreachable != nil || res.total().count()+res.total().failed() != 7 {
		t.Errorf("unreachable %v after %d requests; want none, 7", res.unreachable, res.total().count()+res.total().failed())
	}

	s, mock, ended, res = stepRun(0, 2)
	s.step(t, mock, ended, 0, errRefusedForTest)
	s.step(t, mock, ended, time.Hour, errRefusedForTest)
	<-ended
	if res.unreachable != nil {
		t.Errorf("--give-up 0: unreachable %v; want never", res.unreachable)
	}
}

// tlsServer serves TLS (with HTTP/2, as a gRPC server over TLS does) on
// a loopback port until cleanup, and writes its CA to a PEM file.
func tlsServer(t *testing.T) (addr, caFile string) {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, ca, 0o600); err != nil {
		t.Fatal(err)
	}
	return srv.Listener.Addr().String(), caFile
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	return lis.Addr().String()
}

// The command stops with exit status 3, one line naming the server and the
// last error, and the report of what ran; a server that turns out to speak
// TLS to a plaintext bench is named as such instead, exit 2.
func TestBenchExitsUnreachableAtGiveUp(t *testing.T) {
	tlsAddr, _ := tlsServer(t)
	for _, tc := range []struct {
		addr, want string
		code       int
	}{
		{closedAddr(t), " unreachable for 5s (last error: " + errRefusedForTest.Error() + "); stopping\n", exitUnreachable},
		{tlsAddr, ": server speaks TLS; pass --tls-ca (or KVSTORE_BENCH_TLS_CA)\n", exitUsage},
	} {
		mock := clock.NewMock()
		cfg := config{Addr: tc.addr, Conns: 1, Mix: mix{1, 1, 0}, Clients: 1, Requests: 1000, Keys: 10,
			Dist: distUniform, ZipfS: 1.1, GiveUp: 5 * time.Second, JSON: true, clock: mock}
		s := newStepTarget()
		var out, errOut safeBuffer
		ended := make(chan struct{})
		code := 0
		go func() {
			code = bench(context.Background(), cfg, s, &out, &errOut)
			close(ended)
		}()
		s.step(t, mock, ended, 0, errRefusedForTest)
		s.step(t, mock, ended, 5*time.Second, errRefusedForTest)
		<-ended
		stderr := errOut.String()
		if code != tc.code || !strings.Contains(stderr, "kvstore-bench: server at "+tc.addr+" unreachable for 5s") ||
			!strings.Contains(stderr, tc.addr+tc.want) || !strings.Contains(stderr, "2 of 2 requests failed: Unavailable=2") {
			t.Errorf("%s: exit %d, stderr %q; want %d and %q", tc.addr, code, stderr, tc.code, tc.want)
		}
		var rep report
		if err := json.Unmarshal([]byte(out.String()), &rep); err != nil {
			t.Fatalf("%v\n%s", err, out.String())
		}
		if rep.Unreachable != errRefusedForTest.Error() || rep.Total.Errors != 2 {
			t.Errorf("report %+v; want the partial run, unreachable %q", rep, errRefusedForTest)
		}
	}
}

// TestTLSMismatchIsNamed is the regression test for a plaintext bench at a
// TLS port, and a TLS bench at a plaintext one, which said only that the
// server does not answer: it now says which side speaks TLS, exit 2.
func TestTLSMismatchIsNamed(t *testing.T) {
	tlsAddr, caFile := tlsServer(t)
	plainAddr := startBaseline(t)
	deadAddr := closedAddr(t)
	for _, tc := range []struct {
		args []string
		want string
		code int
	}{
		{[]string{"--addr", tlsAddr},
			"kvstore-bench: " + tlsAddr + ": server speaks TLS; pass --tls-ca (or KVSTORE_BENCH_TLS_CA)\n", exitUsage},
		{[]string{"--addr", plainAddr, "--tls-ca", caFile},
			"kvstore-bench: " + plainAddr + ": server does not speak TLS; drop --tls-ca", exitUsage},
		// Nothing listening is no mismatch: the error stands.
		{[]string{"--addr", deadAddr}, "kvstore-bench: server at " + deadAddr + " does not answer: ", exitFailed},
		{[]string{"--addr", deadAddr, "--tls-ca", caFile}, "kvstore-bench: server at " + deadAddr + " does not answer: ", exitFailed},
	} {
		// --timeout bounds the wait for the first answer, which never comes.
		code, out, errOut := runBench(t, append(tc.args, "--timeout", "100ms", "--requests", "1", "--progress", "0")...)
		if code != tc.code || out != "" || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want %d and %q", tc.args, code, out, errOut, tc.code, tc.want)
		}
	}
}
