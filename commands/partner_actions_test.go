package commands_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/partnerd/partnerd/commands"
	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/eventstore/embedded"
)

// clock is a settable clock for the handlers.
type clock struct{ t atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(0, c.t.Load()).UTC() }
func (c *clock) set(t time.Time)         { c.t.Store(t.UnixNano()) }
func (c *clock) advance(d time.Duration) { c.t.Add(int64(d)) }

// failStore, once armed, fails the next append to one stream: a crash
// between the two appends of a two-stream command.
type failStore struct {
	eventstore.Store
	stream string
	armed  atomic.Bool
}

var errInjected = errors.New("injected append failure")

func (f *failStore) Append(c context.Context, stream string, expected int64, evs []eventstore.EventData) (eventstore.AppendResult, error) {
	if stream == f.stream && f.armed.CompareAndSwap(true, false) {
		return eventstore.AppendResult{}, errInjected
	}
	return f.Store.Append(c, stream, expected, evs)
}

// actionFixture is a program "acme" on an embedded store, with a clock and
// an access link secret.
func actionFixture(t *testing.T, wrap func(eventstore.Store) commands.EventStore) (*commands.Commands, eventstore.Store, *clock) {
	t.Helper()
	s, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	var store commands.EventStore = s
	if wrap != nil {
		store = wrap(s)
	}
	c := &clock{}
	c.set(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	cmds := commands.New(commands.Deps{Store: store, Now: c.now, AccessLinkSecret: []byte("0123456789abcdef0123456789abcdef"),
		AccessLinkURL: "https://partners.example/access"})
	return cmds, s, c
}

func createPartner(t *testing.T, cmds *commands.Commands, id, source, relationship string) {
	t.Helper()
	if _, _, err := cmds.CreatePartner.Handle(ctx, domain.NewPartner{ProgramID: "acme", PartnerID: id, SignupSource: source,
		Profile: domain.Profile{Name: id, RelationshipType: relationship}}, commands.Meta{Actor: "user:ann"}); err != nil {
		t.Fatal(err)
	}
}

func isInvalidToken(err error) bool {
	var ve *domain.ValidationError
	return errors.As(err, &ve) && len(ve.Fields) == 1 && ve.Fields[0].Field == "token"
}

func TestAccessLinkLifecycle(t *testing.T) {
	cmds, store, clk := actionFixture(t, nil)
	createPartner(t, cmds, "direct", "direct_link", "direct")
	createPartner(t, cmds, "market", "marketplace", "marketplace")

	if _, _, err := cmds.IssueAccessLink.Handle(ctx, "acme", "market", 0, commands.Meta{}); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("access link for a marketplace partner: %v, want a conflict", err)
	}
	_, link, err := cmds.IssueAccessLink.Handle(ctx, "acme", "direct", 5*time.Minute, commands.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	if !link.ExpiresAt.Equal(clk.now().Add(5*time.Minute)) || link.URL != "https://partners.example/access?token="+link.Token {
		t.Fatalf("link = %+v", link)
	}
	// The token is never stored.
	evs, _ := store.ReadStream(ctx, domain.PartnerStream("acme", "direct"), 0, eventstore.Forwards, 100)
	for _, e := range evs {
		if bytes.Contains(e.Data, []byte(link.Token)) || bytes.Contains(e.Data, []byte(strings.Split(link.Token, ".")[1])) {
			t.Fatalf("event %s holds the token: %s", e.Type, e.Data)
		}
	}

	// Tampered: another partner in the payload, the MAC kept.
	payload, mac, _ := strings.Cut(link.Token, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(payload)
	forged := base64.RawURLEncoding.EncodeToString(bytes.Replace(raw, []byte(`"direct"`), []byte(`"market"`), 1)) + "." + mac
	for name, tok := range map[string]string{
		"tampered payload": forged,
		"tampered MAC":     payload + "." + strings.Repeat("A", len(mac)),
		"no MAC":           payload,
		"garbage":          "not a token",
		"empty":            "",
	} {
		if _, _, err := cmds.RedeemAccessLink.Handle(ctx, "acme", tok, commands.Meta{}); !isInvalidToken(err) {
			t.Errorf("%s: %v, want an invalid token", name, err)
		}
	}
	// Another secret, another program.
	other := commands.New(commands.Deps{Store: store, Now: clk.now})
	if _, _, err := other.RedeemAccessLink.Handle(ctx, "acme", link.Token, commands.Meta{}); !isInvalidToken(err) {
		t.Errorf("a server with another secret: %v, want an invalid token", err)
	}
	if _, _, err := cmds.RedeemAccessLink.Handle(ctx, "beta", link.Token, commands.Meta{}); !isInvalidToken(err) {
		t.Errorf("another program: %v, want an invalid token", err)
	}

	clk.advance(time.Minute)
	res, r, err := cmds.RedeemAccessLink.Handle(ctx, "acme", link.Token, commands.Meta{})
	if err != nil || r.PartnerID != "direct" || r.LinkID != link.LinkID || res.Appended != 1 {
		t.Fatalf("redeem = %+v %+v, %v", res, r, err)
	}
	if _, _, err := cmds.RedeemAccessLink.Handle(ctx, "acme", link.Token, commands.Meta{}); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("second redeem: %v, want a conflict", err)
	}

	_, late, err := cmds.IssueAccessLink.Handle(ctx, "acme", "direct", time.Minute, commands.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	clk.advance(time.Minute)
	if _, _, err := cmds.RedeemAccessLink.Handle(ctx, "acme", late.Token, commands.Meta{}); !errors.Is(err, domain.ErrConflict) ||
		!strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired link: %v, want an expired conflict", err)
	}
	if _, _, err := cmds.IssueAccessLink.Handle(ctx, "acme", "direct", 16*time.Minute, commands.Meta{}); strings.Join(fieldsOf(err), ",") != "ttl_seconds" {
		t.Fatalf("a 16-minute link: %v", err)
	}
}

// Of concurrent redemptions of one link exactly one succeeds.
func TestAccessLinkRedeemedOnce(t *testing.T) {
	cmds, _, _ := actionFixture(t, nil)
	createPartner(t, cmds, "direct", "direct_link", "direct")
	_, link, err := cmds.IssueAccessLink.Handle(ctx, "acme", "direct", 0, commands.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	var wins, conflicts atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := cmds.RedeemAccessLink.Handle(ctx, "acme", link.Token, commands.Meta{})
			switch {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, domain.ErrConflict):
				conflicts.Add(1)
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 || conflicts.Load() != 7 {
		t.Fatalf("%d redemptions succeeded and %d conflicted, want 1 and 7", wins.Load(), conflicts.Load())
	}
}

func linksOf(t *testing.T, store eventstore.Store, id string) []string {
	t.Helper()
	p, _, _, err := commands.Load[domain.Partner](ctx, store, domain.PartnerStream("acme", id))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range p.State().Links {
		out = append(out, l.PartnerID)
	}
	return out
}

// A link is recorded on both partners; an interrupted link is finished by
// repeating the request; unlinking from either side removes both.
func TestLinkAccountsOnBothPartners(t *testing.T) {
	var fs *failStore
	cmds, store, _ := actionFixture(t, func(s eventstore.Store) commands.EventStore {
		fs = &failStore{Store: s, stream: domain.PartnerStream("acme", "b")}
		return fs
	})
	for _, id := range []string{"a", "b", "c"} {
		createPartner(t, cmds, id, "", "direct")
	}
	meta := commands.Meta{Actor: "user:ann", CorrelationID: "req-1"}
	// The mirror append fails: the link is on a only.
	fs.armed.Store(true)
	if _, _, err := cmds.LinkAccounts.Handle(ctx, "acme", "a", "b", "same owner", meta); !errors.Is(err, errInjected) {
		t.Fatalf("link with a failing mirror: %v", err)
	}
	if got := strings.Join(linksOf(t, store, "a"), ",") + "|" + strings.Join(linksOf(t, store, "b"), ","); got != "b|" {
		t.Fatalf("links after the failure = %s, want b|", got)
	}
	// The repeat finishes it.
	res, st, err := cmds.LinkAccounts.Handle(ctx, "acme", "a", "b", "other words", meta)
	if err != nil || len(st.Links) != 1 || st.Links[0].Reason != "same owner" {
		t.Fatalf("repeat = %+v, %v", st.Links, err)
	}
	if got := linksOf(t, store, "b"); len(got) != 1 || got[0] != "a" {
		t.Fatalf("b's links = %v", got)
	}
	evs, _ := store.ReadStream(ctx, domain.PartnerStream("acme", "b"), 1, eventstore.Forwards, 10)
	var mirror domain.PartnerAccountLinked
	_ = json.Unmarshal(evs[0].Data, &mirror)
	var md commands.EventMeta
	_ = json.Unmarshal(evs[0].Metadata, &md)
	if mirror.InitiatedBy != "a" || mirror.LinkedPartnerID != "a" || mirror.Reason != "same owner" ||
		md.Actor != "user:ann" || md.CorrelationID != "req-1" || md.CausationID != res.Stream+"@2" {
		t.Fatalf("mirror = %+v, meta %+v", mirror, md)
	}
	if _, _, err := cmds.LinkAccounts.Handle(ctx, "acme", "a", "b", "again", meta); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("linking a linked pair: %v, want a conflict", err)
	}
	if _, _, err := cmds.LinkAccounts.Handle(ctx, "acme", "b", "a", "again", meta); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("linking a linked pair from the other side: %v, want a conflict", err)
	}
	if _, _, err := cmds.LinkAccounts.Handle(ctx, "acme", "a", "nobody", "x", meta); strings.Join(fieldsOf(err), ",") != "partner_id" {
		t.Fatalf("link to a missing partner: %v", err)
	}
	if _, _, err := cmds.LinkAccounts.Handle(ctx, "acme", "ghost", "a", "x", meta); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("link from a missing partner: %v", err)
	}
	// Unlink from b's side removes both.
	if _, st, err := cmds.UnlinkAccounts.Handle(ctx, "acme", "b", "a", "sold", meta); err != nil || len(st.Links) != 0 {
		t.Fatalf("unlink = %+v, %v", st.Links, err)
	}
	if got := linksOf(t, store, "a"); len(got) != 0 {
		t.Fatalf("a's links after unlinking from b = %v", got)
	}
	if _, _, err := cmds.UnlinkAccounts.Handle(ctx, "acme", "a", "b", "", meta); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("unlinking twice: %v, want not found", err)
	}
}

func TestNotesMessagesAndInvites(t *testing.T) {
	cmds, _, clk := actionFixture(t, nil)
	createPartner(t, cmds, "p1", "", "direct")
	meta := commands.Meta{Actor: "user:ann via apikey:1"}
	_, n1, err := cmds.AddNote.Handle(ctx, "acme", "p1", "Prefers calls.", meta)
	if err != nil {
		t.Fatal(err)
	}
	clk.advance(time.Second)
	_, n2, err := cmds.AddNote.Handle(ctx, "acme", "p1", "Called.", meta)
	if err != nil {
		t.Fatal(err)
	}
	notes, version, err := cmds.Notes.Handle(ctx, "acme", "p1")
	if err != nil || len(notes) != 2 || notes[0] != n1 || notes[1] != n2 || n1.Author != meta.Actor || version != 3 {
		t.Fatalf("notes = %+v (version %d), %v", notes, version, err)
	}
	if _, _, err := cmds.Notes.Handle(ctx, "acme", "nobody"); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("notes of a missing partner: %v", err)
	}
	res, id, err := cmds.SendMessage.Handle(ctx, "acme", "p1", domain.NewMessage{Subject: "Hi", Body: "Welcome"}, meta)
	if err != nil || !strings.HasPrefix(id, "m_") || res.Appended != 2 {
		t.Fatalf("message = %+v %s, %v (want the message and the move to outreach)", res, id, err)
	}
	res, id, err = cmds.Invite.Handle(ctx, "acme", "p1", domain.NewInvite{Kind: "survey", TargetID: "nps-2026"}, meta)
	if err != nil || !strings.HasPrefix(id, "i_") || res.Appended != 1 {
		t.Fatalf("invite = %+v %s, %v", res, id, err)
	}
	if _, _, err := cmds.SendMessage.Handle(ctx, "acme", "p1", domain.NewMessage{Channel: "email", Subject: "Hi", Body: "x"}, meta); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("e-mail to a partner without an address: %v", err)
	}
}

// rivalStore wins every race for one stream: before each append there, a
// rival command writes to the same stream first, so the command's
// expected version is always behind.
type rivalStore struct {
	eventstore.Store
	stream  string
	rival   func()
	inRival atomic.Bool
	rivals  atomic.Int64
}

func (r *rivalStore) Append(c context.Context, stream string, expected int64, evs []eventstore.EventData) (eventstore.AppendResult, error) {
	if stream == r.stream && r.rival != nil && r.inRival.CompareAndSwap(false, true) {
		r.rival() // its own append passes straight through
		r.inRival.Store(false)
		r.rivals.Add(1)
	}
	return r.Store.Append(c, stream, expected, evs)
}

// A command that loses its stream to other writers on every retry says
// so (ErrContended: a 503 to retry), not the store's raw version error
// (a 500).
func TestCommandLosingEveryRaceIsContended(t *testing.T) {
	var rs *rivalStore
	cmds, _, _ := actionFixture(t, func(s eventstore.Store) commands.EventStore {
		rs = &rivalStore{Store: s, stream: domain.PartnerStream("acme", "busy")}
		return rs
	})
	createPartner(t, cmds, "busy", "", "direct")
	n := 0
	rs.rival = func() {
		n++
		if _, _, err := cmds.UpdatePartner.Handle(ctx, "acme", "busy", domain.Patch{"description": json.RawMessage(fmt.Sprintf(`"rival %d"`, n))}, commands.Meta{Actor: "rival"}); err != nil {
			t.Errorf("rival: %v", err)
		}
	}
	_, _, err := cmds.AddNote.Handle(ctx, "acme", "busy", "hello", commands.Meta{Actor: "test"})
	if !errors.Is(err, commands.ErrContended) || errors.Is(err, eventstore.ErrWrongVersion) {
		t.Fatalf("a note that never wins: %v, want ErrContended", err)
	}
	if got := rs.rivals.Load(); got < 10 {
		t.Fatalf("gave up after %d lost races", got)
	}
}
