// Package resp reads Redis commands (RESP arrays of bulk strings, and
// inline commands) and writes RESP2 and RESP3 replies. Memory is bounded
// by what a client actually sends, never by what it declares: lengths are
// checked against Limits, and buffers grow as bytes arrive.
package resp

import (
	"bufio"
	"cmp"
	"io"
	"strconv"
)

// Limits bound what one client can make the server hold.
type Limits struct {
	// MaxBulk is the longest bulk string argument; default 512 MiB
	// (Redis' proto-max-bulk-len).
	MaxBulk int
	// MaxArgs is the most arguments of one command; default 1<<20.
	MaxArgs int
	// MaxInline is the longest inline command line; default 64 KiB.
	MaxInline int
	// MaxCommand bounds the bytes of all arguments of one command;
	// default 4 × MaxBulk.
	MaxCommand int
}

// ProtocolError is a violation of the protocol; its text is Redis' after
// "ERR ". The connection cannot be read on after it.
type ProtocolError struct{ msg string }

func (e *ProtocolError) Error() string { return "Protocol error: " + e.msg }

func protoErr(msg string) error { return &ProtocolError{msg: msg} }

// Reader reads commands from a connection.
type Reader struct {
	br  *bufio.Reader
	lim Limits
	// args and buf are reused between commands: the arguments of one
	// ReadCommand point into buf.
	args  [][]byte
	buf   []byte
	spans []span
}

// span is an argument's bytes in buf; arguments are sliced once buf
// stops moving.
type span struct{ start, end int }

// maxKeep is the largest argument buffer kept for the next command.
const maxKeep = 1 << 20

// NewReader returns a Reader of r; zero fields of lim take the defaults.
func NewReader(r io.Reader, lim Limits) *Reader {
	if lim.MaxBulk <= 0 {
		lim.MaxBulk = 512 << 20
	}
	if lim.MaxArgs <= 0 {
		lim.MaxArgs = 1 << 20
	}
	if lim.MaxInline <= 0 {
		lim.MaxInline = 64 << 10
	}
	if lim.MaxCommand <= 0 {
		lim.MaxCommand = 4 * lim.MaxBulk
	}
	return &Reader{br: bufio.NewReaderSize(r, 16<<10), lim: lim}
}

// Buffered is how many bytes were read from the connection and not yet
// parsed: a server parses on while it is above 0 to batch a pipeline.
func (r *Reader) Buffered() int { return r.br.Buffered() }

// ReadCommand reads one command. The arguments are valid until the next
// call only: they point into a buffer the Reader reuses. Empty inline
// lines and empty arrays are skipped, as Redis does. io.EOF means the
// stream ended between commands.
func (r *Reader) ReadCommand() ([][]byte, error) {
	if cap(r.buf) > maxKeep {
		r.buf = nil
	}
	if cap(r.args) > 4096 {
		r.args, r.spans = nil, nil
	}
	for {
		b, err := r.br.Peek(1)
		if err != nil {
			return nil, err
		}
		var args [][]byte
		if b[0] == '*' {
			args, err = r.readArray()
		} else {
			args, err = r.readInline()
		}
		if err != nil {
			return nil, err
		}
		if len(args) > 0 {
			return args, nil
		}
	}
}

// readLine reads a line ending in \r\n (or \n) of at most max bytes,
// without the line ending; tooLong is the error past max.
func (r *Reader) readLine(max int, tooLong string) ([]byte, error) {
	var line []byte
	for {
		frag, err := r.br.ReadSlice('\n')
		if len(line)+len(frag) > max+2 {
			return nil, protoErr(tooLong)
		}
		if err == nil {
			if line == nil {
				line = frag
			} else {
				line = append(line, frag...)
			}
			break
		}
		if err != bufio.ErrBufferFull {
			if err == io.EOF && (len(line) > 0 || len(frag) > 0) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		line = append(line, frag...)
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// readArray reads "*n\r\n" and n bulk strings.
func (r *Reader) readArray() ([][]byte, error) {
	line, err := r.readLine(32, "too big mbulk count string")
	if err != nil {
		return nil, eofMid(err)
	}
	n, err := strconv.ParseInt(string(line[1:]), 10, 64)
	if err != nil || n > int64(r.lim.MaxArgs) {
		return nil, protoErr("invalid multibulk length")
	}
	if n <= 0 {
		return nil, nil
	}
	args := r.args[:0]
	spans := r.spans[:0]
	if cap(spans) == 0 {
		spans = make([]span, 0, min(n, 1024))
	}
	r.buf = r.buf[:0]
	total := 0
	for range n {
		b, err := r.br.Peek(1)
		if err != nil {
			return nil, eofMid(err)
		}
		if b[0] != '$' {
			return nil, protoErr("expected '$', got '" + string(b[0]) + "'")
		}
		line, err := r.readLine(32, "too big bulk count string")
		if err != nil {
			return nil, eofMid(err)
		}
		size, err := strconv.ParseInt(string(line[1:]), 10, 64)
		if err != nil || size < 0 || size > int64(r.lim.MaxBulk) {
			return nil, protoErr("invalid bulk length")
		}
		if total += int(size); total > r.lim.MaxCommand {
			return nil, protoErr("invalid bulk length")
		}
		start := len(r.buf)
		if err := r.readN(int(size)); err != nil {
			return nil, eofMid(err)
		}
		spans = append(spans, span{start, len(r.buf)})
		crlf, err := r.br.Peek(2)
		if err != nil {
			return nil, eofMid(err)
		}
		if crlf[0] != '\r' || crlf[1] != '\n' {
			return nil, protoErr("expected CRLF after a bulk string")
		}
		r.br.Discard(2)
	}
	for _, s := range spans {
		args = append(args, r.buf[s.start:s.end:s.end])
	}
	r.args, r.spans = args, spans
	return args, nil
}

// readN appends n bytes from the connection to buf, growing it as they
// arrive rather than by what was declared.
func (r *Reader) readN(n int) error {
	for n > 0 {
		if len(r.buf) == cap(r.buf) {
			// Doubling keeps a command of many arguments linear; the
			// buffer never outgrows twice what has arrived (plus 4 KiB),
			// whatever length a bulk claims.
			nb := make([]byte, len(r.buf), cap(r.buf)+max(cap(r.buf), 4<<10))
			copy(nb, r.buf)
			r.buf = nb
		}
		room := r.buf[len(r.buf):min(cap(r.buf), len(r.buf)+n)]
		m, err := io.ReadFull(r.br, room)
		r.buf = r.buf[:len(r.buf)+m]
		n -= m
		if err != nil {
			return err
		}
	}
	return nil
}

func eofMid(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readInline reads an inline command: arguments split on spaces, with
// double quotes (and their escapes) and single quotes as in redis-cli.
func (r *Reader) readInline() ([][]byte, error) {
	line, err := r.readLine(r.lim.MaxInline, "too big inline request")
	if err != nil {
		return nil, err
	}
	r.buf = append(r.buf[:0], line...)
	args, ok := splitArgs(r.buf, r.args[:0])
	if !ok {
		return nil, protoErr("unbalanced quotes in request")
	}
	if len(args) > r.lim.MaxArgs {
		return nil, protoErr("invalid multibulk length")
	}
	r.args = args
	return args, nil
}

// splitArgs splits line in place, like Redis' sdssplitargs.
func splitArgs(line []byte, args [][]byte) ([][]byte, bool) {
	i := 0
	for {
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		if i == len(line) {
			return args, true
		}
		out := line[i:i] // the argument is rewritten in place
		switch line[i] {
		case '"':
			i++
			for {
				if i >= len(line) {
					return nil, false
				}
				c := line[i]
				switch {
				case c == '\\' && i+3 < len(line) && line[i+1] == 'x' && isHex(line[i+2]) && isHex(line[i+3]):
					out = append(out, unhex(line[i+2])<<4|unhex(line[i+3]))
					i += 4
					continue
				case c == '\\' && i+1 < len(line):
					i++
					c = cmp.Or(escapes[line[i]], line[i])
				case c == '"':
					if !closes(line, i) {
						return nil, false
					}
					i++
					args = append(args, out)
					goto next
				}
				out = append(out, c)
				i++
			}
		case '\'':
			i++
			for {
				if i >= len(line) {
					return nil, false
				}
				c := line[i]
				if c == '\\' && i+1 < len(line) && line[i+1] == '\'' {
					c = '\''
					i++
				} else if c == '\'' {
					if !closes(line, i) {
						return nil, false
					}
					i++
					args = append(args, out)
					goto next
				}
				out = append(out, c)
				i++
			}
		default:
			j := i
			for j < len(line) && !isSpace(line[j]) {
				j++
			}
			args = append(args, line[i:j:j])
			i = j
		}
	next:
	}
}

// escapes are the one-letter escapes of a double-quoted argument.
var escapes = [256]byte{'n': '\n', 'r': '\r', 't': '\t', 'b': '\b', 'a': '\a'}

// closes reports whether the quote at line[i] ends an argument: a closing
// quote must be followed by a space or the end of the line.
func closes(line []byte, i int) bool { return i+1 == len(line) || isSpace(line[i+1]) }

func isSpace(c byte) bool {
	switch c {
	case ' ', '\n', '\r', '\t', '\v', '\f':
		return true
	}
	return false
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
