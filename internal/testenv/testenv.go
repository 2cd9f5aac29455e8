// Package testenv gives tests the external services they need: a real Redis
// configured through the environment (started by scripts/redis.sh, which
// scripts/test.sh runs for you) and an in-process miniredis.
//
// Tests that need a real Redis call Redis or RedisURL. When
// PARTNERD_TEST_REDIS_URL is unset they are skipped on a developer's machine
// and fail in CI (CI=true), so CI can never pass by silently skipping them.
//
// All tests share one Redis server and nothing is flushed: each test must put
// its keys under its own UniquePrefix.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// RedisURLEnv names the variable that holds the test Redis URL,
// e.g. redis://127.0.0.1:6390/0.
const RedisURLEnv = "PARTNERD_TEST_REDIS_URL"

// pingTimeout bounds the reachability check done by Redis.
const pingTimeout = 5 * time.Second

// InCI reports whether the tests run in CI (CI set to true or 1).
func InCI() bool {
	ci, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && ci
}

// RedisURL returns the URL of the real Redis to test against. If
// PARTNERD_TEST_REDIS_URL is unset it fails the test in CI and skips it
// elsewhere.
func RedisURL(t testing.TB) string {
	t.Helper()
	if u := os.Getenv(RedisURLEnv); u != "" {
		return u
	}
	if InCI() {
		t.Fatal(RedisURLEnv + " is not set but CI=true: tests that need a real Redis must run; " +
			"use bash scripts/test.sh, or eval \"$(scripts/redis.sh start)\" first")
		return ""
	}
	t.Skip("real Redis not configured: run `eval \"$(scripts/redis.sh start)\"` or bash scripts/test.sh")
	return ""
}

// Redis returns a client for the real Redis named by PARTNERD_TEST_REDIS_URL
// (see RedisURL for what happens when it is unset). The test fails if that
// server does not answer PING. The client is closed when the test ends.
// Nothing is flushed: use UniquePrefix for every key.
func Redis(t testing.TB) *redis.Client {
	t.Helper()
	raw := RedisURL(t)
	opts, err := redis.ParseURL(raw)
	if err != nil {
		t.Fatalf("%s=%s: %v", RedisURLEnv, redact(raw), err)
	}
	// Redis 7.0 does not know CLIENT SETINFO.
	opts.DisableIdentity = true
	client := redis.NewClient(opts)
	t.Cleanup(func() { _ = client.Close() })

	ctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		t.Fatalf("Redis at %s=%s is unreachable: %v (start it with scripts/redis.sh start)",
			RedisURLEnv, redact(raw), err)
	}
	return client
}

// Miniredis returns a client for a fresh in-process miniredis server. Server
// and client are closed when the test ends.
func Miniredis(t testing.TB) *redis.Client {
	t.Helper()
	client, _ := MiniredisServer(t)
	return client
}

// MiniredisServer is Miniredis that also returns the server, for tests that
// need to control it (FastForward for TTLs, SetError, Close to simulate an
// outage, ...).
func MiniredisServer(t testing.TB) (*redis.Client, *miniredis.Miniredis) {
	t.Helper()
	srv := miniredis.RunT(t) // closed at cleanup
	client := redis.NewClient(&redis.Options{Addr: srv.Addr(), DisableIdentity: true})
	t.Cleanup(func() { _ = client.Close() }) // runs before srv.Close
	return client, srv
}

// UniquePrefix returns a short random string made of [0-9a-z] (a letter and
// 12 hex digits), different on every call, to namespace a test's Redis keys
// on the shared server, e.g. prefix+":partner:42".
func UniquePrefix(t testing.TB) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("random prefix: %v", err)
	}
	return "t" + hex.EncodeToString(b[:])
}

// redact hides a password in a Redis URL before it goes into a test log.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
