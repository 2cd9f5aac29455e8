package projections

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/partnerd/partnerd/domain"
)

// ProgramsTag is the hash tag of every key of the programs projection: there
// are few programs, and an API key must be found without knowing its program.
const ProgramsTag = "programs"

// Programs keeps programs and their API key hashes:
//
//	program:<id>            hash  name, created_at
//	programs                set   every program ID
//	key:<sha256>            string → program ID (live keys only)
//	keyid:<program>:<key>   string → sha256 (to revoke)
type Programs struct{}

// Name implements Projection.
func (Programs) Name() string { return "programs" }

// Topics implements Projection.
func (Programs) Topics() []string { return []string{"partnerd.programs"} }

// Tag implements Projection.
func (Programs) Tag(Event) string { return ProgramsTag }

// Plan implements Projection.
func (Programs) Plan(ctx context.Context, rd redis.Cmdable, b *Batch) error {
	ks := b.Keys(ProgramsTag)
	w := b.W(ProgramsTag)
	revoked := map[string]string{} // keyid key → hash, issued earlier in this batch
	owner := map[string]string{}   // key key → program, set earlier in this batch
	for _, e := range b.Events {
		ev, err := domain.DecodeEvent(e.Type, e.Schema, e.Data)
		if err != nil {
			return err
		}
		switch ev := ev.(type) {
		case domain.ProgramCreated:
			w.HSet(ks.Key("program", ev.ProgramID), "name", ev.Name, "created_at", ev.CreatedAt.Format(timeFormat))
			w.SAdd(ks.Key("programs"), ev.ProgramID)
		case domain.ProgramAPIKeyIssued:
			w.Set(ks.Key("key", ev.KeyHash), ev.ProgramID)
			w.Set(ks.Key("keyid", ev.ProgramID, ev.KeyID), ev.KeyHash)
			revoked[ks.Key("keyid", ev.ProgramID, ev.KeyID)] = ev.KeyHash
			owner[ks.Key("key", ev.KeyHash)] = ev.ProgramID
		case domain.ProgramAPIKeyRevoked:
			idKey := ks.Key("keyid", ev.ProgramID, ev.KeyID)
			hash, ok := revoked[idKey]
			if !ok {
				v, err := rd.Get(ctx, idKey).Result()
				if err != nil && err != redis.Nil {
					return fmt.Errorf("read %s: %w", idKey, err)
				}
				hash = v
			}
			if hash != "" {
				// Only if the key still maps to this program: a log from
				// before keys were checked for reuse may have given the
				// same key to another program since.
				keyKey := ks.Key("key", hash)
				prog, ok := owner[keyKey]
				if !ok {
					v, err := rd.Get(ctx, keyKey).Result()
					if err != nil && err != redis.Nil {
						return fmt.Errorf("read %s: %w", keyKey, err)
					}
					prog = v
				}
				if prog == ev.ProgramID {
					w.Del(keyKey)
					owner[keyKey] = ""
				}
			}
			w.Del(idKey)
		}
	}
	return nil
}

// ProgramView is a program as read.
type ProgramView struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	CreatedAt string `json:"created_at"`
}
