package rpc

import (
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"kvstore/actor"
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
