package actor

import (
	"errors"
	"fmt"
	"testing"

	"kvstore/wal"
)

// TestFromLog: replies released by the log carry the actor's errors, so
// the fronts map them without knowing the log; the detail is kept.
func TestFromLog(t *testing.T) {
	failed := fmt.Errorf("%w: fsync /data/wal/x.wal: input/output error", wal.ErrFailed)
	for _, tt := range []struct {
		name      string
		in        error
		want      error
		wantInner error
	}{
		{"nil", nil, nil, nil},
		{"closed", wal.ErrClosed, ErrStopped, wal.ErrClosed},
		{"failed", failed, ErrNotPersisted, wal.ErrFailed},
		{"refused at admission stays ErrStorage", fmt.Errorf("%w: %w", ErrStorage, failed), ErrStorage, wal.ErrFailed},
		{"memory limit passes", ErrMemoryLimit, ErrMemoryLimit, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := fromLog(tt.in)
			if tt.want == nil {
				if got != nil {
					t.Fatalf("fromLog(nil) = %v", got)
				}
				return
			}
			if !errors.Is(got, tt.want) || (tt.wantInner != nil && !errors.Is(got, tt.wantInner)) {
				t.Fatalf("fromLog(%v) = %v; want it to match %v and %v", tt.in, got, tt.want, tt.wantInner)
			}
			if tt.name == "refused at admission stays ErrStorage" && errors.Is(got, ErrNotPersisted) {
				t.Fatalf("an admission refusal became ErrNotPersisted: %v", got)
			}
		})
	}
}
