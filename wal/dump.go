package wal

import (
	"bufio"
	"encoding/base64"
	"io"
	"strconv"
	"time"
	"unicode/utf8"
)

// DumpOptions are the choices of Dump.
type DumpOptions struct {
	// MaxValueBytes, if positive, is how much of a longer value Dump
	// prints: that many bytes (fewer, to end on a whole UTF-8 character),
	// then "… (N bytes)" inside the string and "truncated":true in the
	// object, so one 1 MiB value does not flood a terminal. 0 prints
	// every value whole.
	MaxValueBytes int
}

// Dump writes every record of the log in dir to w as one JSON object per
// line, oldest first:
//
//	{"seq":1,"op":"set","key":"k","value":"v","deadline":"2026-01-02T15:04:05Z"}
//	{"seq":2,"op":"del","key":"k"}
//	{"seq":3,"op":"set","key":"big","value":"xxxx… (1048576 bytes)","truncated":true}
//
// deadline (RFC 3339, UTC) is omitted when the record has none. A key or
// value that is not valid UTF-8 is written as key_base64 or value_base64
// instead, so nothing is lost (a truncated one is the base64 of its first
// bytes, then the marker). Keys are always whole. Dump only reads: on the
// first bad frame it stops, after printing every record before it, and
// returns a *CorruptError (a torn tail included, which the server would
// cut). On the log of a running server the newest frame may be mid-write
// and show up as such a tail.
func Dump(fsys FS, dir string, w io.Writer, opts DumpOptions) error {
	segs, err := listSegments(fsys, dir)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	var line []byte
	for _, s := range segs {
		sc, err := scanSegment(fsys, s.path, s.base, func(r Record) error {
			line = appendJSONRecord(line[:0], r, opts.MaxValueBytes)
			_, err := bw.Write(line)
			return err
		})
		if err != nil {
			bw.Flush()
			return err
		}
		if sc.bad != nil {
			if err := bw.Flush(); err != nil {
				return err
			}
			return &CorruptError{File: s.path, Offset: sc.end, Err: sc.bad}
		}
	}
	return bw.Flush()
}

func appendJSONRecord(b []byte, r Record, maxValue int) []byte {
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, r.Seq, 10)
	switch r.Kind {
	case KindSet:
		b = append(b, `,"op":"set"`...)
	case KindDelete:
		b = append(b, `,"op":"del"`...)
	}
	b = appendJSONField(b, "key", r.Key, 0)
	if r.Kind == KindSet {
		b = appendJSONField(b, "value", r.Value, maxValue)
		if r.Deadline != 0 {
			b = append(b, `,"deadline":"`...)
			b = time.Unix(0, r.Deadline).UTC().AppendFormat(b, time.RFC3339Nano)
			b = append(b, '"')
		}
	}
	if maxValue > 0 && len(r.Value) > maxValue {
		b = append(b, `,"truncated":true`...)
	}
	return append(b, "}\n"...)
}

// appendJSONField appends ,"name":"s", or ,"name_base64":"..." when s is
// not UTF-8 (JSON strings cannot carry arbitrary bytes). With max > 0, a
// longer s is cut to its first max bytes (back to a character boundary
// when it is UTF-8) followed by "… (N bytes)".
func appendJSONField(b []byte, name, s string, max int) []byte {
	var marker string
	text := utf8.ValidString(s)
	if max > 0 && len(s) > max {
		marker = "… (" + strconv.Itoa(len(s)) + " bytes)"
		cut := max
		for text && cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	if !text {
		b = append(b, `,"`+name+`_base64":"`...)
		b = base64.StdEncoding.AppendEncode(b, []byte(s))
		b = append(b, marker...)
		return append(b, '"')
	}
	b = append(b, `,"`+name+`":"`...)
	const hex = "0123456789abcdef"
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	b = append(b, marker...)
	return append(b, '"')
}
