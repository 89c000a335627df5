// Package server is the embeddable kvstore server: the data-dir lock,
// recovery (newest valid snapshot + log tail), the owner goroutine, the
// log writer, the snapshot goroutine and the gRPC and HTTP fronts, with
// one lifetime wired by an oklog/run group.
//
// Start from DefaultConfig, set what you need, then New and Run:
//
//	cfg := server.DefaultConfig()
//	cfg.DataDir = "/var/lib/kvstore"
//	s, err := server.New(cfg)
//	if err != nil { ... }
//	go s.Run(ctx)   // serves until ctx ends or Close
//	<-s.Ready()     // recovered, SERVING
//
// Shutdown runs in order: health NOT_SERVING, listeners closed, in-flight
// requests drained (ShutdownGrace), final snapshot, owner stopped, log
// flushed, fsynced and closed. cmd/server is this package plus flag
// parsing.
package server
