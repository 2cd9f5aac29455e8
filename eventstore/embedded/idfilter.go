package embedded

import (
	"hash/maphash"

	"github.com/cockroachdb/pebble"
)

// idFilter is an in-memory Bloom filter over the IDs in the ID index, so
// AppendUnique seeks the index only for IDs that may be there (about 1 %
// of new IDs, plus the real repeats) instead of for every ID. It is built
// at Open by scanning the index and grows by chaining filters of doubling
// capacity. Only the writer goroutine uses it (after Open).
type idFilter struct {
	seed    maphash.Seed
	filters []*bloomSet
}

type bloomSet struct {
	bits []uint64
	m    uint64 // bits
	n    int    // IDs added
	cap  int    // IDs it was sized for
}

const bloomHashes = 7 // with 10 bits per ID: ~1 % false positives

func newBloom(capacity int) *bloomSet {
	m := uint64(capacity) * 10
	return &bloomSet{bits: make([]uint64, (m+63)/64), m: m, cap: capacity}
}

func (f *idFilter) hash(id string) (uint64, uint64) {
	h := maphash.String(f.seed, id)
	return h & 0xffffffff, h>>32 | 1
}

func (f *idFilter) add(id string) {
	last := f.filters[len(f.filters)-1]
	if last.n >= last.cap {
		last = newBloom(last.cap * 2)
		f.filters = append(f.filters, last)
	}
	h1, h2 := f.hash(id)
	for i := uint64(0); i < bloomHashes; i++ {
		b := (h1 + i*h2) % last.m
		last.bits[b/64] |= 1 << (b % 64)
	}
	last.n++
}

func (f *idFilter) mayContain(id string) bool {
	h1, h2 := f.hash(id)
	for _, bl := range f.filters {
		hit := true
		for i := uint64(0); i < bloomHashes && hit; i++ {
			b := (h1 + i*h2) % bl.m
			hit = bl.bits[b/64]&(1<<(b%64)) != 0
		}
		if hit {
			return true
		}
	}
	return false
}

// loadIDFilter scans the ID index into a new filter.
func loadIDFilter(db *pebble.DB) (*idFilter, error) {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixID}, UpperBound: []byte{prefixID + 1}})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var ids []string
	for ok := it.First(); ok; ok = it.Next() {
		ids = append(ids, string(it.Key()[1:]))
	}
	if err := it.Error(); err != nil {
		return nil, err
	}
	f := &idFilter{seed: maphash.MakeSeed(), filters: []*bloomSet{newBloom(max(1<<20, 2*len(ids)))}}
	for _, id := range ids {
		f.add(id)
	}
	return f, nil
}
