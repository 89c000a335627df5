package rpc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"kvstore/actor"
	kvstorepb "kvstore/proto"
)

// TestRefuseWritesHealth: after RefuseWrites the KVStore service is
// NOT_SERVING, pushed to Watch streams too, and Ready is false, while ""
// stays SERVING; a SetServing after it does not bring writes back.
func TestRefuseWritesHealth(t *testing.T) {
	ts := startServer(t, actor.Config{}, Options{})
	kv := kvstorepb.KVStore_ServiceDesc.ServiceName
	check := func(service string, want healthpb.HealthCheckResponse_ServingStatus) {
		t.Helper()
		resp, err := ts.health.Check(context.Background(), &healthpb.HealthCheckRequest{Service: service})
		if err != nil || resp.GetStatus() != want {
			t.Fatalf("health %q = %v, %v; want %v", service, resp.GetStatus(), err, want)
		}
	}
	ts.srv.SetServing()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watch, err := ts.health.Watch(ctx, &healthpb.HealthCheckRequest{Service: kv})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := watch.Recv(); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Watch first = %v, %v; want SERVING", r, err)
	}

	ts.srv.RefuseWrites()
	if r, err := watch.Recv(); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("Watch after RefuseWrites = %v, %v; want NOT_SERVING", r, err)
	}
	check("", healthpb.HealthCheckResponse_SERVING)
	check(kv, healthpb.HealthCheckResponse_NOT_SERVING)
	if ts.srv.Ready() {
		t.Fatal("Ready while writes are refused")
	}

	ts.srv.SetServing()
	check("", healthpb.HealthCheckResponse_SERVING)
	check(kv, healthpb.HealthCheckResponse_NOT_SERVING)
	if ts.srv.Ready() {
		t.Fatal("Ready after SetServing: writes are still refused")
	}
}

// TestOutcomeUnknownIsNotNotPersisted: a write whose records may be on
// disk is not answered "not persisted".
func TestOutcomeUnknownIsNotNotPersisted(t *testing.T) {
	svc := NewService(nil, Options{})
	err := svc.fail("set", fmt.Errorf("%w: %w", actor.ErrOutcomeUnknown, errors.New("wal: sync: EIO")))
	wantCode(t, err, codes.Unavailable, "write outcome unknown")
	if strings.Contains(err.Error(), "not persisted") {
		t.Fatalf("%v says not persisted", err)
	}
	err = svc.fail("set", fmt.Errorf("%w: %w", actor.ErrNotPersisted, errors.New("wal: sync: EIO")))
	wantCode(t, err, codes.Unavailable, "write not persisted")
}
