package projections

import "testing"

// BenchmarkNGrams: the n-grams of one partner's search text, computed for
// every partner created or renamed (live, and in every rebuild).
func BenchmarkNGrams(b *testing.B) {
	for b.Loop() {
		_ = NGrams("kabaloti media", "p0001234", "https://p0001234.example")
	}
}
