package queries_test

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/queries"
)

type fixedGen int64

func (g fixedGen) Generation(string) int64 { return int64(g) }

// TestBatchConsistencyToken: a token for a write that touched several
// streams waits until every one of them is applied, not just the last.
func TestBatchConsistencyToken(t *testing.T) {
	backends(t, func(t *testing.T, rdb *redis.Client, program string) {
		ctx := context.Background()
		q := queries.New(rdb, nil, fixedGen(1))
		q.WaitLimit = 100 * time.Millisecond
		a, b := domain.PartnerStream(program, "a"), domain.ActivityStream(program, "b")
		w := queries.Writes{}
		w.Add(a, 3)
		w.Add(a, 2) // the highest version is kept
		w.Add(b, 5)
		tok, err := q.Token(ctx, program, w)
		if err != nil || tok == "" {
			t.Fatalf("token: %q %v", tok, err)
		}
		guard := func(projection, stream string, v int) {
			if err := rdb.HSet(ctx, "pd:"+projection+":g1:{"+program+"}:v", stream, v).Err(); err != nil {
				t.Fatal(err)
			}
		}
		// Only the partner write is applied, and only up to version 2.
		guard("partners", a, 2)
		if err := q.WaitFor(ctx, program, tok); !errors.Is(err, queries.ErrNotCaughtUp) {
			t.Fatalf("nothing applied in full: %v", err)
		}
		guard("partners", a, 3)
		if err := q.WaitFor(ctx, program, tok); !errors.Is(err, queries.ErrNotCaughtUp) {
			t.Fatalf("the activity not applied: %v", err)
		}
		guard("activities", b, 5)
		if err := q.WaitFor(ctx, program, tok); err != nil {
			t.Fatalf("everything applied: %v", err)
		}
		// A token is valid in its own program only; an unknown one is refused.
		if err := q.WaitFor(ctx, program+"x", tok); !errors.Is(err, queries.ErrBadToken) {
			t.Fatalf("another program: %v", err)
		}
		rdb.Del(ctx, "pd:tok:"+tokenID(t, tok))
		if err := q.WaitFor(ctx, program, tok); !errors.Is(err, queries.ErrTokenExpired) {
			t.Fatalf("expired token: %v", err)
		}
		// One stream: the plain token, nothing stored; none: a batch token
		// that waits for nothing, valid in its program only.
		one := queries.Writes{}
		one.Add(a, 3)
		if tok, _ := q.Token(ctx, program, one); tok != queries.ConsistencyToken(a, 3) {
			t.Fatalf("one stream: %q", tok)
		}
		none, err := q.Token(ctx, program, queries.Writes{})
		if err != nil || none == "" {
			t.Fatalf("no writes: %q %v", none, err)
		}
		tokenID(t, none)
		if err := q.WaitFor(ctx, program, none); err != nil {
			t.Fatalf("waiting on a token of no writes: %v", err)
		}
		if err := q.WaitFor(ctx, "other-"+program, none); !errors.Is(err, queries.ErrBadToken) {
			t.Fatalf("a token of no writes in another program: %v", err)
		}
	})
}

func tokenID(t *testing.T, tok string) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || !strings.HasPrefix(string(raw), "~batch:") {
		t.Fatalf("not a batch token: %q", tok)
	}
	return strings.TrimPrefix(string(raw), "~batch:")
}
