package wal_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"strings"
	"testing"

	"kvstore/wal"
)

func TestRecordRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		rec  wal.Record
	}{
		{"set", wal.Record{Seq: 1, Kind: wal.KindSet, Key: "k", Value: "v"}},
		{"set with deadline", wal.Record{Seq: 2, Kind: wal.KindSet, Key: "k", Value: "v", Deadline: 1767225600123456789}},
		{"negative deadline", wal.Record{Seq: 3, Kind: wal.KindSet, Key: "k", Value: "v", Deadline: -1}},
		{"empty key and value", wal.Record{Seq: 4, Kind: wal.KindSet}},
		{"delete", wal.Record{Seq: 5, Kind: wal.KindDelete, Key: "gone"}},
		{"delete empty key", wal.Record{Seq: 6, Kind: wal.KindDelete}},
		{"binary", wal.Record{Seq: 7, Kind: wal.KindSet, Key: "\x00\xff\n", Value: "\x00\x00\x80"}},
		{"unicode", wal.Record{Seq: 8, Kind: wal.KindSet, Key: "ключ", Value: "値"}},
		{"long key (2-byte varint)", wal.Record{Seq: 9, Kind: wal.KindSet, Key: strings.Repeat("k", 300), Value: "v"}},
		{"large value", wal.Record{Seq: 10, Kind: wal.KindSet, Key: "big", Value: strings.Repeat("v", 1<<20)}},
		{"max seq", wal.Record{Seq: math.MaxUint64, Kind: wal.KindDelete, Key: "k"}},
	}
	var all []byte
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := wal.AppendRecord([]byte("prefix"), tt.rec)
			if !bytes.HasPrefix(b, []byte("prefix")) {
				t.Fatal("AppendRecord clobbered dst")
			}
			frame := b[len("prefix"):]
			if len(frame) != wal.EncodedLen(tt.rec) {
				t.Fatalf("frame is %d bytes, EncodedLen says %d", len(frame), wal.EncodedLen(tt.rec))
			}
			got, n, err := wal.DecodeRecord(frame)
			if err != nil {
				t.Fatalf("DecodeRecord: %v", err)
			}
			if n != len(frame) || got != tt.rec {
				t.Fatalf("DecodeRecord = %+v, %d; want %+v, %d", got, n, tt.rec, len(frame))
			}
		})
		all = wal.AppendRecord(all, tt.rec)
	}
	// Frames concatenate: decoding the stream yields every record.
	for i, tt := range tests {
		got, n, err := wal.DecodeRecord(all)
		if err != nil || got != tt.rec {
			t.Fatalf("stream record %d: %+v, %v", i, got, err)
		}
		all = all[n:]
	}
	if len(all) != 0 {
		t.Fatalf("%d bytes left over", len(all))
	}
}

func TestDecodedRecordDoesNotAliasInput(t *testing.T) {
	b := wal.AppendRecord(nil, setRec(1, "key", "value"))
	r, _, err := wal.DecodeRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 'X'
	}
	if r.Key != "key" || r.Value != "value" {
		t.Fatalf("record changed with its input: %+v", r)
	}
}

// Every single-byte change anywhere in a frame must be detected: that is
// what lets recovery trust a frame that decodes.
func TestDecodeRejectsEveryByteCorruption(t *testing.T) {
	recs := []wal.Record{
		{Seq: 42, Kind: wal.KindSet, Key: "user:1", Value: "alice", Deadline: 1767225600e9},
		{Seq: 7, Kind: wal.KindDelete, Key: "user:2"},
		{Seq: 1, Kind: wal.KindSet},
	}
	for _, rec := range recs {
		frame := wal.AppendRecord(nil, rec)
		for i := range frame {
			for delta := 1; delta < 256; delta++ {
				bad := bytes.Clone(frame)
				bad[i] ^= byte(delta)
				got, _, err := wal.DecodeRecord(bad)
				if err == nil {
					t.Fatalf("%+v: byte %d ^ %#x decoded as %+v", rec, i, delta, got)
				}
				if !errors.Is(err, wal.ErrBadRecord) && !errors.Is(err, wal.ErrIncomplete) {
					t.Fatalf("byte %d ^ %#x: error %v wraps neither ErrBadRecord nor ErrIncomplete", i, delta, err)
				}
			}
		}
	}
}

// frameWith builds a frame around payload with a correct CRC, to test the
// payload checks behind it.
func frameWith(payload []byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(payload)))
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(payload, crc32.MakeTable(crc32.Castagnoli)))
	return append(b, payload...)
}

func TestDecodeInvalid(t *testing.T) {
	valid := wal.AppendRecord(nil, setRec(1, "k", "v"))
	hdr := func(length uint32) []byte { return binary.LittleEndian.AppendUint32(nil, length) }
	payload := func(seq uint64, kind byte, rest ...byte) []byte {
		return append(append(binary.LittleEndian.AppendUint64(nil, seq), kind), rest...)
	}
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, wal.ErrIncomplete},
		{"three bytes", []byte{1, 2, 3}, wal.ErrIncomplete},
		{"header only", valid[:8], wal.ErrIncomplete},
		{"torn payload", valid[:len(valid)-1], wal.ErrIncomplete},
		{"zeros", make([]byte, 64), wal.ErrBadRecord},
		{"four zeros", make([]byte, 4), wal.ErrBadRecord},
		{"length below minimum", append(hdr(9), make([]byte, 40)...), wal.ErrBadRecord},
		{"length above max", append(hdr(wal.MaxRecordBytes+1), make([]byte, 40)...), wal.ErrBadRecord},
		{"length max uint32", append(hdr(math.MaxUint32), make([]byte, 40)...), wal.ErrBadRecord},
		{"huge length within max", append(hdr(wal.MaxRecordBytes), make([]byte, 40)...), wal.ErrIncomplete},
		{"crc mismatch", append(valid[:len(valid)-1:len(valid)-1], valid[len(valid)-1]^1), wal.ErrBadRecord},
		{"seq zero", frameWith(payload(0, byte(wal.KindDelete), 0)), wal.ErrBadRecord},
		{"unknown kind", frameWith(payload(1, 9, 0)), wal.ErrBadRecord},
		{"kind zero", frameWith(payload(1, 0, 0)), wal.ErrBadRecord},
		{"key longer than payload", frameWith(payload(1, byte(wal.KindDelete), 5, 'a')), wal.ErrBadRecord},
		{"key length overflows", frameWith(payload(1, byte(wal.KindDelete), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)), wal.ErrBadRecord},
		{"trailing bytes", frameWith(payload(1, byte(wal.KindDelete), 1, 'a', 'b')), wal.ErrBadRecord},
		{"set without value", frameWith(payload(1, byte(wal.KindSet), 1, 'a')), wal.ErrBadRecord},
		{"set without deadline", frameWith(payload(1, byte(wal.KindSet), 1, 'a', 1, 'b', 0, 0, 0)), wal.ErrBadRecord},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, n, err := wal.DecodeRecord(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("DecodeRecord = %+v, %d, %v; want %v", r, n, err, tt.want)
			}
			if n != 0 {
				t.Fatalf("n = %d on error", n)
			}
		})
	}
}

func TestDecodeDoesNotAllocateForGarbage(t *testing.T) {
	huge := binary.LittleEndian.AppendUint32(nil, wal.MaxRecordBytes)
	huge = append(huge, make([]byte, 100)...)
	zeros := make([]byte, 16)
	allocs := testing.AllocsPerRun(100, func() {
		wal.DecodeRecord(huge)
		wal.DecodeRecord(zeros)
	})
	if allocs != 0 {
		t.Fatalf("decoding garbage allocated %v times per run", allocs)
	}
}

// TestMaxSetValue: a Set with the longest value MaxSetValue allows fits,
// one byte more does not, across the key lengths where the uvarint
// lengths change, and EncodedLen agrees with Fits.
func TestMaxSetValue(t *testing.T) {
	big := strings.Repeat("x", wal.MaxRecordBytes+1) // sliced, never copied
	for _, k := range []int{0, 1, 127, 128, 1 << 14, 1 << 20, 1 << 21, wal.MaxRecordBytes - 30, wal.MaxRecordBytes - 22} {
		v := wal.MaxSetValue(k)
		if v < 0 {
			t.Fatalf("MaxSetValue(%d) = %d; want a length", k, v)
		}
		fits := wal.Record{Seq: 1, Kind: wal.KindSet, Key: big[:k], Value: big[:v], Deadline: 1}
		if !wal.Fits(fits) || wal.EncodedLen(fits) > wal.MaxRecordBytes+8 {
			t.Errorf("key %d, value %d: does not fit (EncodedLen %d)", k, v, wal.EncodedLen(fits))
		}
		over := fits
		over.Value = big[:v+1]
		if wal.Fits(over) || wal.EncodedLen(over) <= wal.MaxRecordBytes+8 {
			t.Errorf("key %d, value %d: fits, want MaxSetValue to be the largest", k, v+1)
		}
	}
	for _, k := range []int{-1, wal.MaxRecordBytes - 21, wal.MaxRecordBytes, wal.MaxRecordBytes + 1} {
		if v := wal.MaxSetValue(k); v != -1 {
			t.Errorf("MaxSetValue(%d) = %d; want -1", k, v)
		}
	}
	if wal.Fits(wal.Record{Seq: 1, Kind: wal.KindDelete, Key: big}) {
		t.Error("a delete with a key over MaxRecordBytes fits")
	}
}
