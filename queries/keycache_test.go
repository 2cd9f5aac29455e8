package queries_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/projections"
	"github.com/partnerd/partnerd/queries"
)

// programsQueries starts a programs projection runner on rdb (stopped
// with the test) and queries reading what it applies.
func programsQueries(t *testing.T, rdb *redis.Client) (*projections.Runner, *queries.Queries) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	r := projections.NewRunner(rdb, projections.Programs{})
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return r, queries.New(rdb, nil, gens{r})
}

// TestProgramOfKeyCache: a key's program is answered from memory while
// the programs projection applied nothing new, a revocation it applies
// takes effect on the next request, and one it does not see (another
// instance applied it) within a second.
func TestProgramOfKeyCache(t *testing.T) {
	backends(t, func(t *testing.T, rdb *redis.Client, program string) {
		ctx := context.Background()
		r, q := programsQueries(t, rdb)
		q.KeysVersion = func() uint64 { return r.Applied() + uint64(r.Generation())<<40 }
		stream := domain.ProgramStream(program)
		var version uint64
		apply := func(ev domain.Event) {
			t.Helper()
			data, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			version++
			if err := r.Apply(ctx, []projections.Event{{ID: program + "-" + ev.EventType() + string(rune('0'+version)), Type: ev.EventType(),
				Stream: stream, Program: program, Version: version, Position: eventstore.Position(version), Schema: 1,
				RecordedAt: time.Now(), Data: data}}); err != nil {
				t.Fatal(err)
			}
		}
		lookup := func(hash string) string {
			t.Helper()
			p, err := q.ProgramOfKey(ctx, hash)
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
		now := time.Now().UTC()
		apply(domain.ProgramCreated{ProgramID: program, Name: program, CreatedAt: now})
		apply(domain.ProgramAPIKeyIssued{ProgramID: program, KeyID: "k1", KeyHash: program + "-h1", IssuedAt: now})
		apply(domain.ProgramAPIKeyIssued{ProgramID: program, KeyID: "k2", KeyHash: program + "-h2", IssuedAt: now})
		if p := lookup(program + "-h1"); p != program {
			t.Fatalf("issued key: %q", p)
		}
		if p := lookup(program + "-unknown"); p != "" {
			t.Fatalf("unknown key: %q", p)
		}

		// Revoked through the projection this process runs: refused at once.
		apply(domain.ProgramAPIKeyRevoked{ProgramID: program, KeyID: "k1", RevokedAt: now})
		if p := lookup(program + "-h1"); p != "" {
			t.Fatalf("revoked key still answers %q", p)
		}

		// Gone from Redis behind this process's back (another instance
		// applied the revocation): the cached answer lasts at most a second.
		if p := lookup(program + "-h2"); p != program {
			t.Fatalf("second key: %q", p)
		}
		keys, err := rdb.Keys(ctx, "pd:programs:*:key:"+program+"-h2").Result()
		if err != nil || len(keys) != 1 {
			t.Fatalf("key entry in Redis: %v %v", keys, err)
		}
		if err := rdb.Del(ctx, keys[0]).Err(); err != nil {
			t.Fatal(err)
		}
		if p := lookup(program + "-h2"); p != program {
			t.Fatalf("the answer was not cached: %q", p)
		}
		deadline := time.Now().Add(3 * time.Second)
		for lookup(program+"-h2") != "" {
			if time.Now().After(deadline) {
				t.Fatal("a key removed from Redis still answers after 3 s")
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

// A log from before chosen keys were checked for reuse may hold one key
// issued to two programs (the later one has it): revoking it in the
// earlier program must not cut the later one off.
func TestRevokingASharedLegacyKeyLeavesItsOwner(t *testing.T) {
	backends(t, func(t *testing.T, rdb *redis.Client, program string) {
		ctx := context.Background()
		r, q := programsQueries(t, rdb)
		var pos eventstore.Position
		versions := map[string]uint64{}
		apply := func(batch ...domain.Event) {
			t.Helper()
			var evs []projections.Event
			for _, ev := range batch {
				data, err := json.Marshal(ev)
				if err != nil {
					t.Fatal(err)
				}
				var prog string
				switch e := ev.(type) {
				case domain.ProgramCreated:
					prog = e.ProgramID
				case domain.ProgramAPIKeyIssued:
					prog = e.ProgramID
				case domain.ProgramAPIKeyRevoked:
					prog = e.ProgramID
				}
				stream := domain.ProgramStream(prog)
				versions[stream]++
				pos++
				evs = append(evs, projections.Event{ID: stream + "-" + string(rune('0'+versions[stream])), Type: ev.EventType(),
					Stream: stream, Program: prog, Version: versions[stream], Position: pos, Schema: 1, RecordedAt: time.Now(), Data: data})
			}
			if err := r.Apply(ctx, evs); err != nil {
				t.Fatal(err)
			}
		}
		now := time.Now().UTC()
		a, b, hash := program+"a", program+"b", program+"-shared"
		apply(domain.ProgramCreated{ProgramID: a, Name: a, CreatedAt: now},
			domain.ProgramAPIKeyIssued{ProgramID: a, KeyID: "ka", KeyHash: hash, IssuedAt: now})
		apply(domain.ProgramCreated{ProgramID: b, Name: b, CreatedAt: now},
			domain.ProgramAPIKeyIssued{ProgramID: b, KeyID: "kb", KeyHash: hash, IssuedAt: now})
		apply(domain.ProgramAPIKeyRevoked{ProgramID: a, KeyID: "ka", RevokedAt: now})
		if p, err := q.ProgramOfKey(ctx, hash); err != nil || p != b {
			t.Fatalf("the key after the earlier program revoked it: %q, %v; want %q", p, err, b)
		}
		// In one batch too.
		c, d, hash2 := program+"c", program+"d", program+"-shared2"
		apply(domain.ProgramCreated{ProgramID: c, Name: c, CreatedAt: now},
			domain.ProgramAPIKeyIssued{ProgramID: c, KeyID: "kc", KeyHash: hash2, IssuedAt: now},
			domain.ProgramCreated{ProgramID: d, Name: d, CreatedAt: now},
			domain.ProgramAPIKeyIssued{ProgramID: d, KeyID: "kd", KeyHash: hash2, IssuedAt: now},
			domain.ProgramAPIKeyRevoked{ProgramID: c, KeyID: "kc", RevokedAt: now})
		if p, err := q.ProgramOfKey(ctx, hash2); err != nil || p != d {
			t.Fatalf("in one batch: %q, %v; want %q", p, err, d)
		}
		// Its owner revoking it does revoke it.
		apply(domain.ProgramAPIKeyRevoked{ProgramID: b, KeyID: "kb", RevokedAt: now})
		if p, err := q.ProgramOfKey(ctx, hash); err != nil || p != "" {
			t.Fatalf("revoked by its owner: %q, %v", p, err)
		}
	})
}
