// Package rpc is kvstore's network front: the kvstore.v1.KVStore gRPC
// service over an actor, the same operations as HTTP/JSON, health,
// reflection, Prometheus metrics, TLS with reload, bearer tokens with roles,
// and the client side of TLS and tokens (DialOptions).
//
// Service holds the one validation path: handlers validate input, stamp the
// time from the injected clock, turn the request into an actor command and
// map the outcome to a gRPC status (InvalidArgument for bad input,
// Unavailable while starting, stopping or after a storage fault,
// Canceled/DeadlineExceeded for the caller's context). The HTTP front calls
// the same Service methods and maps their status codes to HTTP ones.
//
// Metrics are pulled at scrape time from counters the actor, the log and
// the snapshotter keep; nothing on the owner goroutine's path takes a lock
// or allocates for them.
package rpc
