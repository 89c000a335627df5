package resp

import (
	"bytes"
	"testing"
)

// FuzzReader: no input panics, and none makes ReadCommand return more
// than its limits allow.
func FuzzReader(f *testing.F) {
	for _, s := range []string{
		encode("SET", "k", "v"), encode("GET", "k") + encode("DEL", "a", "b"), "PING\r\n", `set "a\x41" 'b'` + "\r\n",
		"*2147483647\r\n", "*1\r\n$2147483647\r\n", "*1\r\n*1\r\n*1\r\n", "*-1\r\n*0\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	lim := Limits{MaxBulk: 1 << 16, MaxArgs: 64, MaxInline: 1 << 12}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data), lim)
		for range 1000 {
			args, err := r.ReadCommand()
			if err != nil {
				return
			}
			if len(args) == 0 || len(args) > lim.MaxArgs {
				t.Fatalf("%d arguments", len(args))
			}
			for _, a := range args {
				if len(a) > max(lim.MaxBulk, lim.MaxInline) {
					t.Fatalf("%d-byte argument", len(a))
				}
			}
		}
	})
}

// Commands encoded as clients send them come back exactly.
func FuzzRoundTrip(f *testing.F) {
	f.Add("SET", "k\r\n", "v\x00")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		r := NewReader(bytes.NewReader([]byte(encode(a, b, c))), Limits{})
		args, err := r.ReadCommand()
		if err != nil || len(args) != 3 || string(args[0]) != a || string(args[1]) != b || string(args[2]) != c {
			t.Fatalf("%q %q %q: %q, %v", a, b, c, args, err)
		}
	})
}
