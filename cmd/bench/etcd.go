package main

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
)

// etcd's v3 KV API, driven without etcd's Go modules: the three methods of
// service etcdserverpb.KV that a set, a get and a delete need, with their
// messages encoded by hand (protowire) and sent as raw bytes (rawCodec).
// Only the fields the bench uses are written or read:
//
//	PutRequest          { bytes key = 1; bytes value = 2; }
//	RangeRequest        { bytes key = 1; }       // one key: a get
//	RangeResponse       { repeated KeyValue kvs = 2; int64 count = 4; }
//	DeleteRangeRequest  { bytes key = 1; }       // one key
//	DeleteRangeResponse { int64 deleted = 2; }   // 3 is prev_kvs
const (
	etcdPut         = "/etcdserverpb.KV/Put"
	etcdRange       = "/etcdserverpb.KV/Range"
	etcdDeleteRange = "/etcdserverpb.KV/DeleteRange"
)

// Field numbers of the messages above.
const (
	etcdFieldKey     protowire.Number = 1 // of all three requests
	etcdFieldValue   protowire.Number = 2 // PutRequest
	etcdFieldKvs     protowire.Number = 2 // RangeResponse
	etcdFieldCount   protowire.Number = 4 // RangeResponse
	etcdFieldDeleted protowire.Number = 2 // DeleteRangeResponse (etcd's rpc.proto; not 3, prev_kvs)
)

// rawCodec is a grpc encoding.Codec that passes messages through as bytes:
// Marshal takes a []byte or *[]byte, Unmarshal fills a *[]byte with a copy.
// Calls force it (grpc.ForceCodec) with the content-subtype "proto", so
// the server sees an ordinary protobuf call.
type rawCodec struct{}

// rawCodecName is rawCodec's name; it never goes on the wire (calls set the
// content-subtype "proto"), and it is not registered.
const rawCodecName = "kvstore-bench-raw"

func (rawCodec) Marshal(v any) ([]byte, error) {
	switch b := v.(type) {
	case []byte:
		return b, nil
	case *[]byte:
		return *b, nil
	}
	return nil, fmt.Errorf("%s: cannot marshal %T, want []byte or *[]byte", rawCodecName, v)
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("%s: cannot unmarshal into %T, want *[]byte", rawCodecName, v)
	}
	// data is grpc's buffer, reused once Unmarshal returns.
	*b = append((*b)[:0], data...)
	return nil
}

func (rawCodec) Name() string { return rawCodecName }

// etcdCallOptions make a call send and receive raw bytes as protobuf.
var etcdCallOptions = []grpc.CallOption{grpc.ForceCodec(rawCodec{}), grpc.CallContentSubtype("proto")}

// etcdKeyRequest encodes a request whose only field is key = 1: a
// RangeRequest or DeleteRangeRequest of one key.
func etcdKeyRequest(key string) []byte {
	b := make([]byte, 0, len(key)+8)
	b = protowire.AppendTag(b, etcdFieldKey, protowire.BytesType)
	return protowire.AppendString(b, key)
}

// etcdPutRequest encodes PutRequest{key, value}.
func etcdPutRequest(key, value string) []byte {
	b := make([]byte, 0, len(key)+len(value)+16)
	b = protowire.AppendTag(b, etcdFieldKey, protowire.BytesType)
	b = protowire.AppendString(b, key)
	b = protowire.AppendTag(b, etcdFieldValue, protowire.BytesType)
	return protowire.AppendString(b, value)
}

// scanFields calls visit for every field of the protobuf message b, with
// the value of varint fields (0 for the others). A malformed message is an
// Internal error.
func scanFields(b []byte, visit func(num protowire.Number, typ protowire.Type, varint uint64)) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return status.Errorf(codes.Internal, "malformed etcd message: %v", protowire.ParseError(n))
		}
		b = b[n:]
		var v uint64
		if typ == protowire.VarintType {
			v, n = protowire.ConsumeVarint(b)
		} else {
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return status.Errorf(codes.Internal, "malformed etcd message: field %d: %v", num, protowire.ParseError(n))
		}
		b = b[n:]
		visit(num, typ, v)
	}
	return nil
}

// etcdRangeFound reports whether a RangeResponse holds a key: an entry in
// kvs, or a count above 0.
func etcdRangeFound(resp []byte) (bool, error) {
	found := false
	err := scanFields(resp, func(num protowire.Number, typ protowire.Type, v uint64) {
		switch {
		case num == etcdFieldKvs && typ == protowire.BytesType:
			found = true
		case num == etcdFieldCount && typ == protowire.VarintType && int64(v) > 0:
			found = true
		}
	})
	return found, err
}

// etcdDeleted reports whether a DeleteRangeResponse deleted a key.
func etcdDeleted(resp []byte) (bool, error) {
	deleted := false
	err := scanFields(resp, func(num protowire.Number, typ protowire.Type, v uint64) {
		if num == etcdFieldDeleted && typ == protowire.VarintType && int64(v) > 0 {
			deleted = true
		}
	})
	return deleted, err
}

// etcdPool is the --etcd target: like grpcPool, a few plaintext
// connections spread over the --addr list and shared by all clients, but
// speaking etcd's KV API. TTLs are not supported (etcd needs leases):
// validate refuses --etcd with --ttl.
type etcdPool struct {
	conns   []*grpc.ClientConn
	next    atomic.Uint64
	timeout time.Duration
}

// dialEtcd connects n connections over addrs, as dialPool does, and waits,
// up to timeout, until each has answered a Range.
func dialEtcd(ctx context.Context, addrs []string, n int, timeout time.Duration, valueSize int) (*etcdPool, error) {
	dial := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxRecv(valueSize))),
	}
	conns, err := dialAll(addrs, n, dial)
	if err != nil {
		return nil, err
	}
	p := &etcdPool{conns: conns, timeout: timeout}
	for i, conn := range conns {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		var resp []byte
		err := conn.Invoke(cctx, etcdRange, etcdKeyRequest(keyName(0)), &resp, append(slices.Clip(etcdCallOptions), grpc.WaitForReady(true))...)
		cancel()
		if err != nil {
			p.Close()
			return nil, notAnswering{addrs[i%len(addrs)], err}
		}
	}
	return p, nil
}

// Close closes every connection.
func (p *etcdPool) Close() {
	for _, c := range p.conns {
		c.Close()
	}
}

// invoke calls method with req on the next connection, within the pool's
// timeout, and returns the response.
func (p *etcdPool) invoke(ctx context.Context, method string, req []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	conn := p.conns[p.next.Add(1)%uint64(len(p.conns))]
	var resp []byte
	err := conn.Invoke(ctx, method, req, &resp, etcdCallOptions...)
	return resp, err
}

// Set puts key; ttlSeconds must be 0 (validate refuses --etcd with --ttl).
func (p *etcdPool) Set(ctx context.Context, key, value string, ttlSeconds int64) error {
	if ttlSeconds != 0 {
		return status.Error(codes.Unimplemented, "--etcd: TTLs need etcd leases, which the bench does not use")
	}
	_, err := p.invoke(ctx, etcdPut, etcdPutRequest(key, value))
	return err
}

func (p *etcdPool) Get(ctx context.Context, key string) (bool, error) {
	resp, err := p.invoke(ctx, etcdRange, etcdKeyRequest(key))
	if err != nil {
		return false, err
	}
	return etcdRangeFound(resp)
}

func (p *etcdPool) Delete(ctx context.Context, key string) (bool, error) {
	resp, err := p.invoke(ctx, etcdDeleteRange, etcdKeyRequest(key))
	if err != nil {
		return false, err
	}
	return etcdDeleted(resp)
}
