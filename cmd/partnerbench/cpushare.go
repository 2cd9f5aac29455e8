package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"runtime/pprof"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
)

// cpuShares profiles the CPU while run runs and returns the share of CPU
// samples per category: a sample counts for the first category (in the
// order given) one of whose substrings appears in any function of its
// stack; the rest is "other".
func cpuShares(run func() error, categories [][2]string) (map[string]float64, error) {
	var buf bytes.Buffer
	if err := pprof.StartCPUProfile(&buf); err != nil {
		return nil, err // another profile runs (-cpuprofile): no shares
	}
	err := run()
	pprof.StopCPUProfile()
	if err != nil {
		return nil, err
	}
	stacks, err := parseProfile(buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("read CPU profile: %w", err)
	}
	out := map[string]float64{}
	var total float64
	for _, s := range stacks {
		cat := "other"
	match:
		for _, c := range categories {
			for _, fn := range s.funcs {
				if strings.Contains(fn, c[1]) {
					cat = c[0]
					break match
				}
			}
		}
		out[cat] += float64(s.value)
		total += float64(s.value)
	}
	if total > 0 {
		for k := range out {
			out[k] /= total
		}
	}
	return out, nil
}

type stackSample struct {
	funcs []string
	value int64
}

// parseProfile reads the stacks and CPU values of a gzipped pprof
// profile (profile.proto: sample=2, location=4, function=5, string_table=6).
func parseProfile(gz []byte) ([]stackSample, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, err
	}
	type sample struct {
		locs   []uint64
		values []int64
	}
	var samples []sample
	locFuncs := map[uint64][]uint64{}
	funcName := map[uint64]int64{}
	var strs []string
	err = fields(raw, func(num protowire.Number, v []byte, x uint64) error {
		switch num {
		case 2:
			var s sample
			err := fields(v, func(n protowire.Number, v []byte, x uint64) error {
				switch n {
				case 1:
					s.locs = appendPacked(s.locs, v, x)
				case 2:
					for _, u := range appendPacked(nil, v, x) {
						s.values = append(s.values, int64(u))
					}
				}
				return nil
			})
			samples = append(samples, s)
			return err
		case 4:
			var id uint64
			var fns []uint64
			err := fields(v, func(n protowire.Number, v []byte, x uint64) error {
				switch n {
				case 1:
					id = x
				case 4:
					return fields(v, func(n protowire.Number, _ []byte, x uint64) error {
						if n == 1 {
							fns = append(fns, x)
						}
						return nil
					})
				}
				return nil
			})
			locFuncs[id] = fns
			return err
		case 5:
			var id uint64
			var name int64
			err := fields(v, func(n protowire.Number, _ []byte, x uint64) error {
				switch n {
				case 1:
					id = x
				case 2:
					name = int64(x)
				}
				return nil
			})
			funcName[id] = name
			return err
		case 6:
			strs = append(strs, string(v))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]stackSample, 0, len(samples))
	for _, s := range samples {
		st := stackSample{}
		if len(s.values) > 0 {
			st.value = s.values[len(s.values)-1] // cpu nanoseconds
		}
		for _, l := range s.locs {
			for _, f := range locFuncs[l] {
				if n := funcName[f]; n >= 0 && int(n) < len(strs) {
					st.funcs = append(st.funcs, strs[n])
				}
			}
		}
		out = append(out, st)
	}
	return out, nil
}

// fields calls f for each field of a protobuf message: bytes fields get
// v, varint fields get x.
func fields(b []byte, f func(num protowire.Number, v []byte, x uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		switch typ {
		case protowire.VarintType:
			x, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			if err := f(num, nil, x); err != nil {
				return err
			}
			b = b[n:]
		case protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			if err := f(num, v, 0); err != nil {
				return err
			}
			b = b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			b = b[n:]
		}
	}
	return nil
}

// appendPacked appends a repeated uint64 field, packed (v) or not (x).
func appendPacked(dst []uint64, v []byte, x uint64) []uint64 {
	if v == nil {
		return append(dst, x)
	}
	for len(v) > 0 {
		u, n := protowire.ConsumeVarint(v)
		if n < 0 {
			return dst
		}
		dst = append(dst, u)
		v = v[n:]
	}
	return dst
}
