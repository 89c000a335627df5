package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// opKind is one of the three KVStore operations.
type opKind uint8

const (
	opSet opKind = iota
	opGet
	opDelete
	numOps
)

var opNames = [numOps]string{"set", "get", "del"}

func (k opKind) String() string { return opNames[k] }

// mix is the relative weight of set, get and del, as in "50:50:0".
type mix [numOps]int

func (m mix) String() string {
	return fmt.Sprintf("%d:%d:%d", m[opSet], m[opGet], m[opDelete])
}

// Set parses "set:get:del" or "set:get" (no deletes); it implements
// flag.Value.
func (m *mix) Set(s string) error {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return errors.New(`want set:get:del weights, e.g. "50:50:0"`)
	}
	var v mix
	sum := 0
	for i, p := range parts {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 0 {
			return fmt.Errorf("weight %q is not a non-negative integer", p)
		}
		v[i] = n
		sum += n
	}
	if sum == 0 {
		return errors.New("at least one weight must be positive")
	}
	*m = v
	return nil
}

// Key distributions.
const (
	distUniform = "uniform"
	distZipf    = "zipf"
)

// workload describes the requests to send. It is immutable once built and
// shared by all clients; each client draws from its own generator.
type workload struct {
	mix         mix
	keys        int     // key space: key:00000000 .. key:<keys-1>
	dist        string  // distUniform or distZipf
	zipfS       float64 // zipf exponent, > 1
	value       string  // the value every set writes
	ttlSeconds  int64   // ttl of the sets that get one; 0 = none
	ttlFraction float64 // share of sets that carry ttlSeconds
	seed        uint64
}

// op is one request to send.
type op struct {
	kind  opKind
	key   string
	value string // set
	ttl   int64  // set: ttl_seconds
}

// generator draws ops for one client. It is not safe for concurrent use.
type generator struct {
	w    *workload
	rng  *rand.Rand
	zipf *rand.Zipf
	cum  [numOps]int // cumulative mix weights
}

// generator returns the op stream of one client: stream picks an
// independent, reproducible sequence for the same seed.
func (w *workload) generator(stream uint64) *generator {
	g := &generator{w: w, rng: rand.New(rand.NewPCG(w.seed, stream))}
	sum := 0
	for k := range numOps {
		sum += w.mix[k]
		g.cum[k] = sum
	}
	if w.dist == distZipf {
		// Rank 0 (key:00000000) is the hottest key.
		g.zipf = rand.NewZipf(g.rng, w.zipfS, 1, uint64(w.keys-1))
	}
	return g
}

func (g *generator) next() op {
	var o op
	n := g.rng.IntN(g.cum[numOps-1])
	for o.kind = opSet; n >= g.cum[o.kind]; o.kind++ {
	}
	o.key = keyName(g.keyIndex())
	if o.kind == opSet {
		o.value = g.w.value
		if g.w.ttlSeconds > 0 && (g.w.ttlFraction >= 1 || g.rng.Float64() < g.w.ttlFraction) {
			o.ttl = g.w.ttlSeconds
		}
	}
	return o
}

func (g *generator) keyIndex() int {
	if g.zipf != nil {
		return int(g.zipf.Uint64())
	}
	return g.rng.IntN(g.w.keys)
}

// keyName is fmt.Sprintf("key:%08d", i) without fmt's overhead on the hot
// path.
func keyName(i int) string {
	var buf, num [24]byte
	b := append(buf[:0], "key:"...)
	digits := strconv.AppendInt(num[:0], int64(i), 10)
	for n := len(digits); n < 8; n++ {
		b = append(b, '0')
	}
	return string(append(b, digits...))
}

// randomValue returns size printable bytes drawn from seed, so runs with the
// same seed send the same value.
func randomValue(size int, seed uint64) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	rng := rand.New(rand.NewPCG(seed, 0x76616c7565)) // "value"
	b := make([]byte, size)
	for i := range b {
		b[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return string(b)
}
