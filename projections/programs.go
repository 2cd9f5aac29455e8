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
	// The values this batch wrote to keys so far ("" once deleted): a
	// read sees them before Redis does.
	written := map[string]string{}
	read := func(key string) (string, error) {
		if v, ok := written[key]; ok {
			return v, nil
		}
		v, err := rd.Get(ctx, key).Result()
		if err != nil && err != redis.Nil {
			return "", fmt.Errorf("read %s: %w", key, err)
		}
		return v, nil
	}
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
			keyKey, idKey := ks.Key("key", ev.KeyHash), ks.Key("keyid", ev.ProgramID, ev.KeyID)
			w.Set(keyKey, ev.ProgramID)
			w.Set(idKey, ev.KeyHash)
			written[keyKey], written[idKey] = ev.ProgramID, ev.KeyHash
		case domain.ProgramAPIKeyRevoked:
			idKey := ks.Key("keyid", ev.ProgramID, ev.KeyID)
			hash, err := read(idKey)
			if err != nil {
				return err
			}
			if hash != "" {
				// Only if the key still maps to this program: a log from
				// before keys were checked for reuse may have given the
				// same key to another program since.
				keyKey := ks.Key("key", hash)
				prog, err := read(keyKey)
				if err != nil {
					return err
				}
				if prog == ev.ProgramID {
					w.Del(keyKey)
					written[keyKey] = ""
				}
			}
			w.Del(idKey)
			written[idKey] = ""
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
