package app_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/partnerd/partnerd/app"
	"github.com/partnerd/partnerd/bus"
	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/internal/passwords"
	"github.com/partnerd/partnerd/internal/testenv"
)

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// secretRun is what one run of the secrets scenario saw.
type secretRun struct {
	// shown maps each generated password to the one answer allowed to show it.
	shown map[string]int
	// answers are every HTTP answer of the scenario (status line, headers, body).
	answers []string
}

func (s *secretRun) record(r response) response {
	var b strings.Builder
	fmt.Fprintf(&b, "%d\n", r.status)
	for k, vs := range r.header {
		fmt.Fprintf(&b, "%s: %s\n", k, strings.Join(vs, ","))
	}
	b.Write(r.body)
	s.answers = append(s.answers, b.String())
	return r
}

// secretScenario creates, rotates, uses and deletes credentials, with
// replays and refused requests, and returns what it saw.
func secretScenario(t *testing.T, h *harness) *secretRun {
	s := &secretRun{shown: map[string]int{}}
	do := func(method, path string, body any, headers ...string) response {
		t.Helper()
		return s.record(h.do(method, path, body, headers...))
	}
	password := func(r response, want int) string {
		t.Helper()
		if r.status != want {
			t.Fatalf("%d %s", r.status, r.body)
		}
		p, _ := r.json(t)["password"].(string)
		if len(p) < 24 {
			t.Fatalf("no password of >= 24 characters in %s", r.body)
		}
		s.shown[p] = len(s.answers) - 1
		return p
	}
	body := map[string]any{"id": "login", "name": "SFTP login", "type": "password"}
	p1 := password(do("POST", "/credentials", body, "Idempotency-Key", "create-login"), 201)
	replay := do("POST", "/credentials", body, "Idempotency-Key", "create-login")
	if replay.status != 201 || replay.header.Get("Idempotent-Replayed") != "true" || replay.json(t)["id"] != "login" {
		t.Fatalf("replayed create: %d %v %s", replay.status, replay.header, replay.body)
	}
	p2 := password(do("POST", "/credentials/login/rotate", nil, "Idempotency-Key", "rotate-login"), 200)
	if p2 == p1 {
		t.Fatal("rotation kept the password")
	}
	if r := do("POST", "/credentials/login/rotate", nil, "Idempotency-Key", "rotate-login"); r.status != 200 || r.json(t)["password"] != nil {
		t.Fatalf("replayed rotate: %d %s", r.status, r.body)
	}
	pub, _, private := newSSHKey(t)
	do("POST", "/credentials", map[string]any{"id": "key", "name": "Key", "type": "public_key", "public_key": pub})
	// Refused requests carrying secrets: their errors must not echo them.
	for _, b := range []any{
		map[string]any{"name": "x", "type": "password", "password": p2},
		map[string]any{"name": "x", "type": "public_key", "public_key": p2},
		map[string]any{"name": "x", "type": "public_key", "public_key": private},
		map[string]any{"name": p2, "type": "password", "id": "bad id " + p2},
		`{"name":"` + p2 + `"`,
	} {
		if r := do("POST", "/credentials", b); r.status != 422 && r.status != 400 {
			t.Fatalf("a credential with a secret in the wrong place: %d %s", r.status, r.body)
		}
	}
	do("POST", "/credentials/login/rotate", map[string]any{"public_key": p2})
	do("POST", "/connections", map[string]any{"id": "mail", "name": "Mail", "direction": "upload", "data_type": "audiences",
		"method": "email", "methodology": "push", "pattern": "audiences_*.csv", "credential_id": "login"})
	do("POST", "/connections", map[string]any{"id": "pull", "name": "Pull", "direction": "download", "data_type": "reports",
		"method": "ftp", "methodology": "pull", "folder": "/out", "credential_id": "login"})
	do("POST", "/connections", map[string]any{"id": "bad", "name": "Bad", "direction": "upload", "data_type": "audiences",
		"method": "ftp", "methodology": "push", "credential_id": "key"})
	do("POST", "/connections/mail/check-email", map[string]any{"attachments": []string{"audiences_1.csv", "notes.txt"}})
	do("DELETE", "/credentials/login", nil)
	do("PATCH", "/connections/pull", map[string]any{"method": "sftp", "credential_id": "key"})
	do("DELETE", "/connections/mail", nil)
	r := do("DELETE", "/credentials/login", nil)
	if r.status != 204 {
		t.Fatalf("deleting the unused credential: %d %s", r.status, r.body)
	}
	do("GET", "/credentials", nil, "X-Consistency-Token", r.header.Get("X-Consistency-Token"))
	do("GET", "/credentials/key", nil)
	do("GET", "/credentials/login", nil)
	do("GET", "/connections", nil)
	do("GET", "/connections/pull", nil)
	do("GET", "/connections/mail", nil)
	return s
}

// redisDump renders every key of a Redis database with its value.
func redisDump(t *testing.T, rdb redis.UniversalClient) string {
	t.Helper()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, k := range keys {
		var v any
		switch rdb.Type(ctx, k).Val() {
		case "hash":
			v = rdb.HGetAll(ctx, k).Val()
		case "set":
			v = rdb.SMembers(ctx, k).Val()
		case "zset":
			v = rdb.ZRangeWithScores(ctx, k, 0, -1).Val()
		case "list":
			v = rdb.LRange(ctx, k, 0, -1).Val()
		case "stream":
			v = rdb.XRange(ctx, k, "-", "+").Val()
		default:
			v = rdb.Get(ctx, k).Val()
		}
		fmt.Fprintf(&b, "%s = %v\n", k, v)
	}
	if len(keys) < 10 {
		t.Fatalf("only %d Redis keys: the scan would prove nothing", len(keys))
	}
	return b.String()
}

// logDump renders every event of the log, data and metadata, and returns
// the password hashes the credential events hold.
func logDump(t *testing.T, store eventstore.Store) (string, []string) {
	t.Helper()
	var b strings.Builder
	var hashes []string
	var after eventstore.Position
	for {
		evs, err := store.ReadAll(context.Background(), after, 500)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			fmt.Fprintf(&b, "%s %s %s %s\n", e.StreamID, e.Type, e.Data, e.Metadata)
			ev, err := domain.DecodeStored(e.Type, e.Metadata, e.Data)
			if err != nil {
				t.Fatal(err)
			}
			var secret domain.Secret
			switch ev := ev.(type) {
			case domain.CredentialCreated:
				secret = ev.Secret
			case domain.CredentialRotated:
				secret = ev.Secret
			}
			if secret.PasswordHash != "" {
				hashes = append(hashes, secret.PasswordHash)
			}
			after = e.Position
		}
		if len(evs) < 500 {
			return b.String(), hashes
		}
	}
}

// leaks lists where a secret, or any 8 characters of it, shows up in text.
func leaks(secret, what, text string) []string {
	var out []string
	for i := 0; i+8 <= len(secret); i++ {
		if j := strings.Index(text, secret[i:i+8]); j >= 0 {
			lo, hi := max(0, j-60), min(len(text), j+68)
			out = append(out, fmt.Sprintf("%s holds %q: …%s…", what, secret[i:i+8], text[lo:hi]))
			break
		}
	}
	return out
}

// checkNoSecrets runs the scenario's scans: the passwords in no event,
// Redis key or value, bus message, log line or answer (but the one that
// showed each); the password hashes only in events and bus messages.
func checkNoSecrets(t *testing.T, h *harness, s *secretRun, busText func() string, logs *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.app.WaitCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	events, hashes := logDump(t, h.app.Store)
	if len(hashes) != 2 || len(s.shown) != 2 {
		t.Fatalf("%d password hashes in the log, %d passwords shown; want 2 and 2", len(hashes), len(s.shown))
	}
	for _, hash := range hashes {
		ok := false
		for p := range s.shown {
			if good, err := passwords.Verify(hash, p); err != nil {
				t.Fatalf("stored hash %q: %v", hash, err)
			} else if good {
				ok = true
			}
		}
		if !ok {
			t.Fatalf("stored hash %q is the hash of neither shown password", hash)
		}
	}
	places := map[string]string{"event store": events, "Redis": redisDump(t, h.app.Redis), "bus": busText(), "log": logs.String()}
	if !strings.Contains(places["bus"], domain.TypeCredentialRotated) || !strings.Contains(places["log"], "level=") {
		t.Fatalf("the bus (%d bytes) or the log (%d bytes) captured nothing useful", len(places["bus"]), len(places["log"]))
	}
	var found []string
	for p, at := range s.shown {
		for name, text := range places {
			found = append(found, leaks(p, name, text)...)
		}
		for i, a := range s.answers {
			if i != at {
				found = append(found, leaks(p, fmt.Sprintf("answer %d", i), a)...)
			}
		}
	}
	for _, hash := range hashes {
		key := hash[strings.LastIndexByte(hash, '$')+1:]
		for name, text := range places {
			if name != "event store" && name != "bus" && strings.Contains(text, key) {
				found = append(found, name+" holds a password hash")
			}
		}
		for i, a := range s.answers {
			if strings.Contains(a, key) {
				found = append(found, fmt.Sprintf("answer %d holds a password hash", i))
			}
		}
	}
	for _, f := range found {
		t.Error(f)
	}
}

// collectBus subscribes to every topic of the in-process bus and returns
// a function rendering what arrived.
func collectBus(t *testing.T, h *harness) func() string {
	t.Helper()
	sub, err := h.app.Bus.NewSubscriber("secret-scan")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var mu sync.Mutex
	var b strings.Builder
	for _, topic := range bus.Topics() {
		ch, err := sub.Subscribe(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		go func(ch <-chan *message.Message) {
			for m := range ch {
				mu.Lock()
				fmt.Fprintf(&b, "%s %v %s\n", m.UUID, m.Metadata, m.Payload)
				mu.Unlock()
				m.Ack()
			}
		}(ch)
	}
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		return b.String()
	}
}

func capturedLogger() (*slog.Logger, *syncBuffer) {
	logs := &syncBuffer{}
	return slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), logs
}

// TestSecretsNeverLeak runs the secrets scenario on the in-process bus,
// with the embedded and the real Redis, and scans everything it left.
func TestSecretsNeverLeak(t *testing.T) {
	for _, tc := range []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"embedded redis", func(*testing.T) string { return "" }},
		{"real redis", func(t *testing.T) string { return redisDB(t, dbSecrets) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logger, logs := capturedLogger()
			h := startLogged(t, config(t, tc.url(t)), logger)
			busText := collectBus(t, h)
			s := secretScenario(t, h)
			checkNoSecrets(t, h, s, busText, logs)
		})
	}
}

// TestSecretsNeverLeakOnKafka runs the scenario on a real Kafka (topics
// under a namespace of their own) and real Redis, and scans every record
// of every topic, values and headers.
func TestSecretsNeverLeakOnKafka(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	cfg := config(t, redisDB(t, dbSecretsKafka))
	cfg.KafkaBrokers = brokers
	cfg.KafkaNamespace = testenv.UniquePrefix(t) + "."
	logger, logs := capturedLogger()
	h := startLogged(t, cfg, logger)
	s := secretScenario(t, h)
	checkNoSecrets(t, h, s, func() string { return kafkaDump(t, brokers, cfg) }, logs)
}

// kafkaDump reads every record of every partnerd topic of cfg's namespace.
func kafkaDump(t *testing.T, brokers []string, cfg app.Config) string {
	t.Helper()
	scfg := sarama.NewConfig()
	scfg.Version = sarama.V2_8_0_0
	client, err := sarama.NewClient(brokers, scfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = client.Close() }()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = consumer.Close() }()
	var b strings.Builder
	for _, topic := range bus.Topics() {
		topic = cfg.KafkaNamespace + topic
		for p, newest := range newestOffsets(t, client, topic) {
			if newest == 0 {
				continue
			}
			pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
			if err != nil {
				t.Fatalf("consume %s/%d: %v", topic, p, err)
			}
			for m := range pc.Messages() {
				fmt.Fprintf(&b, "%s %s %s", topic, m.Key, m.Value)
				for _, hd := range m.Headers {
					fmt.Fprintf(&b, " %s=%s", hd.Key, hd.Value)
				}
				b.WriteByte('\n')
				if m.Offset+1 >= newest {
					break
				}
			}
			_ = pc.Close()
		}
	}
	return b.String()
}
