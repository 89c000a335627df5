package rpc

import (
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"kvstore/actor"
	kvstorepb "kvstore/proto"
	"kvstore/wal"
)

// TestFailTooLarge: a command the actor cannot store is bad input, not a
// server fault.
func TestFailTooLarge(t *testing.T) {
	s := NewService(nil, Options{})
	err := s.fail("set", fmt.Errorf("%w: 70000000-byte value", actor.ErrTooLarge))
	if st, _ := status.FromError(err); st.Code() != codes.InvalidArgument {
		t.Fatalf("fail(ErrTooLarge) = %v; want InvalidArgument", err)
	}
}

// TestMaxResponseBytesHoldsTheLargestValue: a client that receives
// MaxResponseBytes can read the longest value a log record holds (keys are
// at least one byte), so no server's --max-value-bytes is out of its reach.
func TestMaxResponseBytesHoldsTheLargestValue(t *testing.T) {
	longest := wal.MaxSetValue(1)
	resp := &kvstorepb.GetResponse{Found: true, Value: strings.Repeat("v", longest)}
	if n := proto.Size(resp); n > MaxResponseBytes {
		t.Fatalf("a GetResponse with a %d-byte value is %d bytes; MaxResponseBytes is %d", longest, n, MaxResponseBytes)
	}
}
