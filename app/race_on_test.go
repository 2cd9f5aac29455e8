//go:build race

package app_test

// raceEnabled: the race detector slows everything down ~5-10x; large
// tests shrink under it.
const raceEnabled = true
