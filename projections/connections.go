package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/partnerd/partnerd/domain"
)

// Connections keeps each program's connections and credentials. No secret
// ever reaches it: credential events carry only a password's hash or a
// public key, and this projection copies neither.
//
//	conndoc:<id>    hash   doc (ConnectionView JSON); gone once deleted
//	conns           zset   every live connection ID, score 0 (lexical order)
//	creddoc:<id>    hash   doc (CredentialView JSON, without used_by); gone once deleted
//	creds           zset   every live credential ID, score 0
//	creduse:<id>    set    live connections that use the credential
type Connections struct{}

// Name implements Projection.
func (Connections) Name() string { return "connections" }

// Topics implements Projection.
func (Connections) Topics() []string { return []string{"partnerd.connections"} }

// Layout implements Layouted. Layout 2: a credential's doc carries its
// stream's version after connections attach and detach (layout 1 left it
// at the last create or rotation, so If-Match with it failed); a start
// rebuilds generations of layout 1.
func (Connections) Layout() int { return 2 }

// Tag implements Projection: one program's keys share a slot.
func (Connections) Tag(e Event) string { return e.Program }

// ConnectionView is a connection as the API shows it.
type ConnectionView struct {
	ID           string    `json:"id"`
	Version      uint64    `json:"version"`
	Name         string    `json:"name"`
	Direction    string    `json:"direction"`
	DataType     string    `json:"data_type"`
	Method       string    `json:"method"`
	Methodology  string    `json:"methodology"`
	Pattern      *string   `json:"pattern"`
	Folder       *string   `json:"folder"`
	CredentialID string    `json:"credential_id"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

func (v *ConnectionView) setConfig(c domain.ConnectionConfig) {
	v.Name, v.Direction, v.DataType, v.Method, v.Methodology = c.Name, c.Direction, c.DataType, c.Method, c.Methodology
	v.Pattern, v.Folder, v.CredentialID = nonEmpty(c.Pattern), nonEmpty(c.Folder), c.CredentialID
}

// ConnectionViewOf renders a connection state as the API shows it.
func ConnectionViewOf(s domain.ConnectionState, version uint64) ConnectionView {
	v := ConnectionView{ID: s.ID, Version: version, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt}
	v.setConfig(s.ConnectionConfig)
	return v
}

// CredentialView is a credential as the API shows it: never its secret.
// UsedBy (the live connections that use it) is added by the query.
type CredentialView struct {
	ID          string     `json:"id"`
	Version     uint64     `json:"version"`
	Name        string     `json:"name"`
	Type        string     `json:"type"`
	Fingerprint *string    `json:"fingerprint"`
	CreatedAt   time.Time  `json:"created_at"`
	RotatedAt   *time.Time `json:"rotated_at"`
	UsedBy      []string   `json:"used_by"`
}

// CredentialViewOf renders a credential state as the API shows it.
func CredentialViewOf(s domain.CredentialState, version uint64) CredentialView {
	return CredentialView{ID: s.ID, Version: version, Name: s.Name, Type: s.Type, Fingerprint: s.Fingerprint,
		CreatedAt: s.CreatedAt, RotatedAt: s.RotatedAt, UsedBy: []string{}}
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Plan implements Projection.
func (Connections) Plan(ctx context.Context, rd redis.Cmdable, b *Batch) error {
	pipe := rd.Pipeline()
	docs := map[string]*redis.StringCmd{}
	for _, e := range b.Events {
		ks := b.Keys(e.Program)
		if docs[e.Stream] != nil {
			continue
		}
		switch e.Type {
		case domain.TypeConnectionUpdated:
			docs[e.Stream] = pipe.HGet(ctx, ks.Key("conndoc", idOf(e, domain.CategoryConnection)), "doc")
		case domain.TypeCredentialRotated, domain.TypeCredentialConnectionAttached, domain.TypeCredentialConnectionDetached:
			docs[e.Stream] = pipe.HGet(ctx, ks.Key("creddoc", idOf(e, domain.CategoryCredential)), "doc")
		}
	}
	if len(docs) > 0 {
		if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
			return fmt.Errorf("read connections: %w", err)
		}
	}
	conns := map[string]*ConnectionView{}
	creds := map[string]*CredentialView{}
	for _, e := range b.Events {
		ev, err := domain.DecodeEvent(e.Type, e.Schema, e.Data)
		if err != nil {
			return err
		}
		ks, w := b.Keys(e.Program), b.W(e.Program)
		switch ev := ev.(type) {
		case domain.ConnectionCreated, domain.ConnectionUpdated:
			v, err := working(conns, docs, e)
			if err != nil {
				return err
			}
			switch ev := ev.(type) {
			case domain.ConnectionCreated:
				*v = ConnectionView{ID: ev.ConnectionID, CreatedAt: ev.CreatedAt, UpdatedAt: ev.CreatedAt}
				v.setConfig(ev.ConnectionConfig)
				w.ZAdd(ks.Key("conns"), 0, ev.ConnectionID)
				w.SAdd(ks.Key("creduse", ev.CredentialID), ev.ConnectionID)
			case domain.ConnectionUpdated:
				v.ID = ev.ConnectionID
				v.setConfig(ev.ConnectionConfig)
				v.UpdatedAt = ev.UpdatedAt
				if ev.PreviousCredentialID != "" {
					w.SRem(ks.Key("creduse", ev.PreviousCredentialID), ev.ConnectionID)
					w.SAdd(ks.Key("creduse", ev.CredentialID), ev.ConnectionID)
				}
			}
			v.Version = e.Version
			doc, _ := json.Marshal(v)
			w.HSet(ks.Key("conndoc", v.ID), "doc", string(doc))
		case domain.ConnectionDeleted:
			delete(conns, e.Stream)
			w.Del(ks.Key("conndoc", ev.ConnectionID))
			w.ZRem(ks.Key("conns"), ev.ConnectionID)
			w.SRem(ks.Key("creduse", ev.CredentialID), ev.ConnectionID)
		case domain.CredentialCreated, domain.CredentialRotated:
			v, err := working(creds, docs, e)
			if err != nil {
				return err
			}
			switch ev := ev.(type) {
			case domain.CredentialCreated:
				*v = CredentialView{ID: ev.CredentialID, Name: ev.Name, Type: ev.Type,
					Fingerprint: nonEmpty(ev.Secret.Fingerprint), CreatedAt: ev.CreatedAt}
				w.ZAdd(ks.Key("creds"), 0, ev.CredentialID)
			case domain.CredentialRotated:
				at := ev.RotatedAt
				v.ID, v.Fingerprint, v.RotatedAt = ev.CredentialID, nonEmpty(ev.Secret.Fingerprint), &at
			}
			v.Version, v.UsedBy = e.Version, nil
			doc, _ := json.Marshal(v)
			w.HSet(ks.Key("creddoc", v.ID), "doc", string(doc))
		case domain.CredentialDeleted:
			delete(creds, e.Stream)
			w.Del(ks.Key("creddoc", ev.CredentialID))
			w.ZRem(ks.Key("creds"), ev.CredentialID)
			w.Del(ks.Key("creduse", ev.CredentialID))
		case domain.CredentialConnectionAttached, domain.CredentialConnectionDetached:
			// They move only the credential's version (what If-Match is
			// checked against); the use list follows the connections' own
			// events. A credential deleted meanwhile has no doc to move.
			if creds[e.Stream] == nil && (docs[e.Stream] == nil || docs[e.Stream].Val() == "") {
				continue
			}
			v, err := working(creds, docs, e)
			if err != nil {
				return err
			}
			v.Version, v.UsedBy = e.Version, nil
			doc, _ := json.Marshal(v)
			w.HSet(ks.Key("creddoc", v.ID), "doc", string(doc))
		}
	}
	return nil
}
