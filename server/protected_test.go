package server

import "testing"

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"localhost:50051": true,
		"LOCALHOST:1":     true,
		"127.0.0.1:1":     true,
		"127.8.9.10:1":    true,
		"[::1]:1":         true,
		":50051":          false,
		"0.0.0.0:1":       false,
		"[::]:1":          false,
		"10.0.0.1:1":      false,
		"example.com:1":   false,
		"garbage":         false,
	} {
		if got := isLoopback(addr); got != want {
			t.Errorf("isLoopback(%q) = %v; want %v", addr, got, want)
		}
	}
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "1048576": 1 << 20, "512MiB": 512 << 20, "2GB": 2e9, "1 KiB": 1024, "10B": 10, "3TiB": 3 << 40,
	} {
		var b ByteSize
		if err := b.Set(in); err != nil || int64(b) != want {
			t.Errorf("Set(%q) = %d, %v; want %d", in, b, err, want)
		}
	}
	for _, in := range []string{"", "lots", "-1MiB", "1.5GB", "9999999TiB", "MiB"} {
		var b ByteSize
		if err := b.Set(in); err == nil {
			t.Errorf("Set(%q) accepted as %d", in, b)
		}
	}
}
