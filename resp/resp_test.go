package resp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

// encode is a command as clients send it: an array of bulk strings.
func encode(args ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b.String()
}

func readAll(t *testing.T, r *Reader) ([][]string, error) {
	t.Helper()
	var out [][]string
	for {
		args, err := r.ReadCommand()
		if err != nil {
			return out, err
		}
		var s []string
		for _, a := range args {
			s = append(s, string(a))
		}
		out = append(out, s)
	}
}

func TestReadCommands(t *testing.T) {
	in := encode("SET", "k", "a\r\nb\x00c") + "\r\n" + "*0\r\n" + encode("GET", "k") +
		"PING\r\n" + `set "a b" 'c d' "\x41\n" ''` + "\r\n" + "  get  x \n"
	want := [][]string{{"SET", "k", "a\r\nb\x00c"}, {"GET", "k"}, {"PING"}, {"set", "a b", "c d", "A\n", ""}, {"get", "x"}}
	for name, r := range map[string]io.Reader{"whole": strings.NewReader(in), "byte by byte": iotest.OneByteReader(strings.NewReader(in))} {
		got, err := readAll(t, NewReader(r, Limits{}))
		if !errors.Is(err, io.EOF) || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: %q, %v; want %q, EOF", name, got, err, want)
		}
	}
}

func TestBufferedSeesAPipeline(t *testing.T) {
	r := NewReader(strings.NewReader(encode("GET", "a")+encode("GET", "b")), Limits{})
	if _, err := r.ReadCommand(); err != nil {
		t.Fatal(err)
	}
	if r.Buffered() == 0 {
		t.Error("Buffered() = 0 with a second command read")
	}
	if _, err := r.ReadCommand(); err != nil {
		t.Fatal(err)
	}
	if r.Buffered() != 0 {
		t.Errorf("Buffered() = %d after the last command", r.Buffered())
	}
}

func TestProtocolErrors(t *testing.T) {
	lim := Limits{MaxBulk: 10, MaxArgs: 3, MaxInline: 16}
	for _, c := range []struct{ in, want string }{
		{"*x\r\n", "Protocol error: invalid multibulk length"},
		{"*4\r\n", "Protocol error: invalid multibulk length"},
		{"*1\r\n*1\r\n", "Protocol error: expected '$', got '*'"},
		{"*1\r\n:1\r\n", "Protocol error: expected '$', got ':'"},
		{"*1\r\n$x\r\n", "Protocol error: invalid bulk length"},
		{"*1\r\n$-1\r\n", "Protocol error: invalid bulk length"},
		{"*1\r\n$11\r\n", "Protocol error: invalid bulk length"},
		{"*1\r\n$2147483648\r\n", "Protocol error: invalid bulk length"},
		{"*1" + strings.Repeat("1", 40) + "\r\n", "Protocol error: too big mbulk count string"},
		{"*1\r\n$" + strings.Repeat("1", 40) + "\r\n", "Protocol error: too big bulk count string"},
		{strings.Repeat("a", 20) + "\r\n", "Protocol error: too big inline request"},
		{`get "a` + "\r\n", "Protocol error: unbalanced quotes in request"},
		{`get 'a'b` + "\r\n", "Protocol error: unbalanced quotes in request"},
	} {
		_, err := NewReader(strings.NewReader(c.in), lim).ReadCommand()
		var pe *ProtocolError
		if !errors.As(err, &pe) || err.Error() != c.want {
			t.Errorf("%q: %v; want %q", c.in, err, c.want)
		}
	}
	if _, err := NewReader(strings.NewReader("*2\r\n$3\r\nGET\r\n"), lim).ReadCommand(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated command: %v; want ErrUnexpectedEOF", err)
	}
}

// Declared sizes cost nothing until the bytes arrive.
func TestHugeDeclarationsAllocateLittle(t *testing.T) {
	for _, in := range []string{"*2147483647\r\n$1\r\na\r\n", "*1\r\n$536870912\r\nabc"} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := NewReader(strings.NewReader(in), Limits{}).ReadCommand()
		runtime.ReadMemStats(&after)
		if err == nil {
			t.Errorf("%q: no error", in)
		}
		if d := after.TotalAlloc - before.TotalAlloc; d > 4<<20 {
			t.Errorf("%q: allocated %d bytes", in, d)
		}
	}
}

// A command of many small arguments (an MSET of 100,000 keys) is read in
// time and memory linear in its size: the buffer doubles, it does not
// grow by one argument at a time.
func TestManyArgumentsReadLinearly(t *testing.T) {
	args := make([]string, 200_001)
	args[0] = "MSET"
	for i := 1; i < len(args); i++ {
		args[i] = fmt.Sprintf("k%06d", i)
	}
	in := encode(args...)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got, err := NewReader(strings.NewReader(in), Limits{}).ReadCommand()
	runtime.ReadMemStats(&after)
	if err != nil || len(got) != len(args) || string(got[len(got)-1]) != args[len(args)-1] {
		t.Fatalf("read %d arguments, %v", len(got), err)
	}
	// The arguments are 1.4 MB and their slice headers 4.8 MB; a buffer
	// grown one argument at a time copies gigabytes.
	if d := after.TotalAlloc - before.TotalAlloc; d > 64<<20 {
		t.Errorf("reading a command of %d bytes allocated %d bytes", len(in), d)
	}
}

func TestSteadyStateAllocatesNothing(t *testing.T) {
	cmd := encode("SET", "key:000001", "0123456789abcdef")
	src := &repeater{b: []byte(cmd)}
	r := NewReader(src, Limits{})
	r.ReadCommand()
	if n := testing.AllocsPerRun(1000, func() { r.ReadCommand() }); n != 0 {
		t.Errorf("%v allocations per command", n)
	}
}

// repeater returns b over and over.
type repeater struct {
	b   []byte
	off int
}

func (r *repeater) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m := copy(p[n:], r.b[r.off:])
		n += m
		r.off = (r.off + m) % len(r.b)
	}
	return n, nil
}

func TestWriter(t *testing.T) {
	for _, c := range []struct {
		proto int
		fn    func(w *Writer)
		want  string
	}{
		{2, func(w *Writer) { w.SimpleString("OK") }, "+OK\r\n"},
		{2, func(w *Writer) { w.Error("ERR a\r\nb") }, "-ERR a  b\r\n"},
		{2, func(w *Writer) { w.Integer(-5) }, ":-5\r\n"},
		{2, func(w *Writer) { w.Bulk([]byte("a\r\n")) }, "$3\r\na\r\n\r\n"},
		{2, func(w *Writer) { w.Null() }, "$-1\r\n"},
		{3, func(w *Writer) { w.Null() }, "_\r\n"},
		{2, func(w *Writer) { w.NullArray() }, "*-1\r\n"},
		{2, func(w *Writer) { w.Map(2) }, "*4\r\n"},
		{3, func(w *Writer) { w.Map(2) }, "%2\r\n"},
		{2, func(w *Writer) { w.Set(1) }, "*1\r\n"},
		{3, func(w *Writer) { w.Set(1) }, "~1\r\n"},
		{2, func(w *Writer) { w.Double(1.5) }, "$3\r\n1.5\r\n"},
		{3, func(w *Writer) { w.Double(1.5) }, ",1.5\r\n"},
		{2, func(w *Writer) { w.Bool(true) }, ":1\r\n"},
		{3, func(w *Writer) { w.Bool(false) }, "#f\r\n"},
		{2, func(w *Writer) { w.Verbatim("txt", "hi") }, "$2\r\nhi\r\n"},
		{3, func(w *Writer) { w.Verbatim("txt", "hi") }, "=6\r\ntxt:hi\r\n"},
	} {
		w := &Writer{Proto: c.proto}
		c.fn(w)
		if string(w.Buf) != c.want {
			t.Errorf("RESP%d: %q; want %q", c.proto, w.Buf, c.want)
		}
	}
}

func BenchmarkReadCommand(b *testing.B) {
	var pipe bytes.Buffer
	for i := range 16 {
		pipe.WriteString(encode("SET", fmt.Sprintf("key:%06d", i), "0123456789abcdef"))
	}
	for name, in := range map[string][]byte{"pipeline16": pipe.Bytes(), "get": []byte(encode("GET", "key:000001"))} {
		b.Run(name, func(b *testing.B) {
			r := NewReader(&repeater{b: in}, Limits{})
			n := bytes.Count(in, []byte("*"))
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				for range n {
					if _, err := r.ReadCommand(); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
