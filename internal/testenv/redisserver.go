package testenv

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RedisServer is a private redis-server process owned by one test, for
// fault tests that kill, restart or freeze Redis: they must never do that
// to the shared test Redis. It listens on 127.0.0.1 on a free port that
// stays the same across restarts, with 64 databases, and keeps its data in
// a temporary folder with an append-only file fsynced on every write, so a
// restart (even after SIGKILL) keeps everything Redis acknowledged, as a
// production Redis with AOF would.
type RedisServer struct {
	t    testing.TB
	bin  string
	dir  string
	port int

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	paused bool
}

// StartRedisServer starts a private redis-server found on PATH
// (scripts/redis.sh installs one in CI). Without one the test fails in CI
// and is skipped elsewhere. The server is killed when the test ends.
func StartRedisServer(t testing.TB) *RedisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if InCI() {
			t.Fatal("redis-server is not on PATH but CI=true: fault tests need their own Redis (scripts/redis.sh installs it)")
		}
		t.Skip("redis-server not on PATH: fault tests need their own Redis process")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	s := &RedisServer{t: t, bin: bin, dir: t.TempDir(), port: port}
	t.Cleanup(s.kill)
	s.Start()
	return s
}

// Addr is host:port of the server.
func (s *RedisServer) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// URL is a redis:// URL of database db.
func (s *RedisServer) URL(db int) string { return fmt.Sprintf("redis://%s/%d", s.Addr(), db) }

// Start starts the server (again) on the same port and folder and waits
// until it answers PING.
func (s *RedisServer) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.t.Fatal("redis-server is already running")
	}
	cmd := exec.Command(s.bin, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--databases", "64",
		"--save", "", "--appendonly", "yes", "--appendfsync", "always", "--dir", s.dir,
		"--logfile", filepath.Join(s.dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.cmd, s.done, s.paused = cmd, done, false
	deadline := time.Now().Add(10 * time.Second)
	for !s.ping() {
		select {
		case <-done:
			s.cmd = nil
			s.t.Fatalf("redis-server on port %d exited at start (see %s)", s.port, filepath.Join(s.dir, "redis.log"))
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server on port %d did not answer PING within 10 s", s.port)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill sends SIGKILL (no shutdown, no final fsync) and waits for the exit.
func (s *RedisServer) Kill() { s.signalAndWait(syscall.SIGKILL) }

// Restart kills the server and starts it again on the same port and data.
func (s *RedisServer) Restart() {
	s.t.Helper()
	s.Kill()
	s.Start()
}

// RestartEmpty kills the server and starts it again with no data, as a
// Redis without persistence comes back (or a failover to an empty replica).
func (s *RedisServer) RestartEmpty() {
	s.t.Helper()
	s.Kill()
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		s.t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "redis.log" {
			if err := os.RemoveAll(filepath.Join(s.dir, e.Name())); err != nil {
				s.t.Fatal(err)
			}
		}
	}
	s.Start()
}

// Pause freezes the server (SIGSTOP): connections stay open but nothing
// answers, as with a network partition.
func (s *RedisServer) Pause() { s.signal(syscall.SIGSTOP, true) }

// Resume unfreezes a paused server (SIGCONT).
func (s *RedisServer) Resume() { s.signal(syscall.SIGCONT, false) }

func (s *RedisServer) signal(sig syscall.Signal, paused bool) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		s.t.Fatal("redis-server is not running")
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("signal redis-server: %v", err)
	}
	s.paused = paused
}

func (s *RedisServer) signalAndWait(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(sig)
	if s.paused {
		_ = s.cmd.Process.Signal(syscall.SIGCONT)
	}
	<-s.done
	s.cmd, s.paused = nil, false
}

func (s *RedisServer) kill() { s.signalAndWait(syscall.SIGKILL) }

// ping speaks RESP directly, so it works while go-redis pools are broken.
func (s *RedisServer) ping() bool {
	c, err := net.DialTimeout("tcp", s.Addr(), 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && line == "+PONG\r\n"
}
