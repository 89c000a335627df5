package redisfront

// match reports whether s matches the glob pattern as Redis' KEYS, SCAN
// MATCH and CONFIG GET read it: * any run, ? any byte, [abc] [^abc]
// [a-z] a class, \x the byte x. It works on bytes, like Redis, and in
// time bounded by len(pattern)×len(s): a star backtracks to the last star
// only.
func match(pattern, s string) bool {
	p, i := 0, 0
	starP, starI := -1, 0
	for i < len(s) {
		if p < len(pattern) {
			switch c := pattern[p]; c {
			case '*':
				for p < len(pattern) && pattern[p] == '*' {
					p++
				}
				if p == len(pattern) {
					return true
				}
				starP, starI = p, i
				continue
			case '?':
				p++
				i++
				continue
			case '[':
				if n, ok := matchClass(pattern[p:], s[i]); n > 0 {
					if ok {
						p += n
						i++
						continue
					}
				}
			case '\\':
				if p+1 < len(pattern) {
					if pattern[p+1] == s[i] {
						p += 2
						i++
						continue
					}
					break
				}
				fallthrough
			default:
				if c == s[i] {
					p++
					i++
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		starI++
		p, i = starP, starI
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// matchClass matches b against the class at the start of pattern ("[...]")
// and returns the class's length in the pattern. An unterminated class
// runs to the end of the pattern, as in Redis.
func matchClass(pattern string, b byte) (n int, ok bool) {
	p := 1
	not := p < len(pattern) && pattern[p] == '^'
	if not {
		p++
	}
	matched := false
	for p < len(pattern) && pattern[p] != ']' {
		switch {
		case pattern[p] == '\\' && p+1 < len(pattern):
			p++
			matched = matched || pattern[p] == b
		case p+2 < len(pattern) && pattern[p+1] == '-' && pattern[p+2] != ']':
			lo, hi := pattern[p], pattern[p+2]
			if lo > hi {
				lo, hi = hi, lo
			}
			matched = matched || (b >= lo && b <= hi)
			p += 2
		default:
			matched = matched || pattern[p] == b
		}
		p++
	}
	if p < len(pattern) {
		p++ // the ']'
	}
	return p, matched != not
}
