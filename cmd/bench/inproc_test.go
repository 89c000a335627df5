package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"kvstore/actor"
)

var (
	errStoppedForTest = fmt.Errorf("wrapped: %w", actor.ErrStopped)
	errStorageForTest = actor.ErrStorage
	errUnknownForTest = errors.New("something else")
)

func TestInprocDrivesTheRealActor(t *testing.T) {
	code, out, errOut := runBench(t, "--inproc", "--requests", "400", "--clients", "8", "--keys", "50",
		"--mix", "40:40:20", "--ttl", "60s", "--ttl-fraction", "0.5", "--preload", "--json")
	if code != exitOK {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	var rep report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.Mode != "inproc" || rep.Total.Count != 400 || rep.Total.Errors != 0 || len(rep.Ops) != 3 {
		t.Fatalf("report %+v; want inproc, 400 ok, 3 ops", rep)
	}
	for _, o := range rep.Ops {
		if o.Op == "get" && o.Found == 0 {
			t.Errorf("no get found a preloaded key: %+v", o)
		}
	}
	if !strings.Contains(errOut, "preloaded 50 keys") {
		t.Errorf("stderr %q does not report the preload", errOut)
	}
}

func TestInprocStoppedActorIsUnavailable(t *testing.T) {
	a := actor.New(actor.Config{ExpireInterval: -1})
	a.Stop()
	var out, errOut strings.Builder
	cfg := config{Mix: mix{1, 1, 1}, Clients: 2, Requests: 30, Keys: 10, Dist: distUniform, ZipfS: 1.1, Inproc: true}
	if code := bench(context.Background(), cfg, actorTarget{a}, &out, &errOut); code != exitFailed {
		t.Errorf("exit %d, want %d", code, exitFailed)
	}
	if !strings.Contains(errOut.String(), "30 of 30 requests failed: Unavailable=30") {
		t.Errorf("stderr %q", errOut.String())
	}
}
