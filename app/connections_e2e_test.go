package app_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/partnerd/partnerd/commands"
	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/projections"
)

// Redis databases of the connection tests (see e2e_helpers_test.go).
const (
	dbConnections  = 22
	dbSecrets      = 23
	dbSecretsKafka = 24
)

// newSSHKey returns a fresh ed25519 key: the public key in authorized_keys
// form, its fingerprint, and the private key in OpenSSH PEM form.
func newSSHKey(t *testing.T) (pub, fingerprint, private string) {
	t.Helper()
	pk, sk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pk)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(sk, "")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp))) + " brand@example", ssh.FingerprintSHA256(sp), string(pem.EncodeToMemory(block))
}

// storedConnection folds a connection's stream.
func (h *harness) storedConnection(id string) *domain.Connection {
	h.t.Helper()
	c, _, _, err := commands.Load[domain.Connection](context.Background(), h.app.Store, domain.ConnectionStream("acme", id))
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

func (h *harness) get(path, token string) response {
	h.t.Helper()
	return h.do("GET", path, nil, "X-Consistency-Token", token)
}

func TestConnectionsOverHTTP(t *testing.T) {
	backends(t, dbConnections, func(t *testing.T, h *harness) {
		pw := h.mustCreate("/credentials", map[string]any{"id": "sftp-login", "name": " SFTP login ", "type": "password"})
		if p, _ := pw["password"].(string); len(p) < 24 || pw["name"] != "SFTP login" || pw["fingerprint"] != nil {
			t.Fatalf("password credential answer = %v", pw)
		}
		pub, fp, private := newSSHKey(t)
		key := h.mustCreate("/credentials", map[string]any{"id": "brand-key", "name": "Brand key", "type": "public_key", "public_key": pub})
		if key["fingerprint"] != fp || key["password"] != nil || key["type"] != "public_key" {
			t.Fatalf("public key credential answer = %v, want fingerprint %s", key, fp)
		}

		head := h.head()
		for _, tc := range []struct {
			name   string
			path   string
			body   any
			want   int
			fields []string
		}{
			{name: "credential without type", path: "/credentials", body: map[string]any{"name": "x"}, want: 422, fields: []string{"type"}},
			{name: "credential of an unknown type", path: "/credentials", body: map[string]any{"name": "x", "type": "token"}, want: 422, fields: []string{"type"}},
			{name: "a private key pasted as public key", path: "/credentials", body: map[string]any{"name": "x", "type": "public_key", "public_key": private}, want: 422, fields: []string{"public_key"}},
			{name: "a key that does not parse", path: "/credentials", body: map[string]any{"name": "x", "type": "public_key", "public_key": "ssh-rsa AAAAB3Nza"}, want: 422, fields: []string{"public_key"}},
			{name: "a taken credential id", path: "/credentials", body: map[string]any{"id": "sftp-login", "name": "x", "type": "password"}, want: 409},
			{name: "connection with nothing", path: "/connections", body: map[string]any{}, want: 422,
				fields: []string{"name", "direction", "method", "methodology", "credential_id"}},
			{name: "data type not legal for the direction", path: "/connections", body: map[string]any{"name": "c", "direction": "download", "data_type": "audiences",
				"method": "sftp", "methodology": "push", "credential_id": "brand-key"}, want: 422, fields: []string{"data_type"}},
			{name: "email pattern that matches everything", path: "/connections", body: map[string]any{"name": "c", "direction": "upload", "data_type": "audiences",
				"method": "email", "methodology": "push", "pattern": "*", "credential_id": "sftp-login"}, want: 422, fields: []string{"pattern"}},
			{name: "email pattern with a path", path: "/connections", body: map[string]any{"name": "c", "direction": "upload", "data_type": "audiences",
				"method": "email", "methodology": "push", "pattern": "../audiences_*.csv", "credential_id": "sftp-login"}, want: 422, fields: []string{"pattern"}},
			{name: "pull folder with ..", path: "/connections", body: map[string]any{"name": "c", "direction": "upload", "data_type": "audiences",
				"method": "sftp", "methodology": "pull", "folder": "/home/acme/../root", "credential_id": "brand-key"}, want: 422, fields: []string{"folder"}},
			{name: "pull relative folder", path: "/connections", body: map[string]any{"name": "c", "direction": "upload", "data_type": "audiences",
				"method": "sftp", "methodology": "pull", "folder": "audiences", "credential_id": "brand-key"}, want: 422, fields: []string{"folder"}},
			{name: "unknown credential", path: "/connections", body: map[string]any{"name": "c", "direction": "upload", "data_type": "audiences",
				"method": "sftp", "methodology": "push", "credential_id": "nosuch"}, want: 422, fields: []string{"credential_id"}},
			{name: "ftp with a key", path: "/connections", body: map[string]any{"name": "c", "direction": "upload", "data_type": "audiences",
				"method": "ftp", "methodology": "push", "credential_id": "brand-key"}, want: 422, fields: []string{"credential_id"}},
			{name: "unknown field", path: "/connections", body: map[string]any{"name": "c", "colour": "red"}, want: 422, fields: []string{"colour"}},
			{name: "malformed", path: "/connections", body: `{"name":`, want: 400},
		} {
			r := h.do("POST", tc.path, tc.body)
			if r.status != tc.want || (tc.fields != nil && !reflect.DeepEqual(problemFields(t, r), tc.fields)) {
				t.Errorf("%s: %d %s; want %d naming %v", tc.name, r.status, r.body, tc.want, tc.fields)
			}
			if strings.Contains(string(r.body), "AAAA") || strings.Contains(string(r.body), "PRIVATE KEY") {
				t.Errorf("%s: the error quotes the key: %s", tc.name, r.body)
			}
		}
		if h.head() != head {
			t.Fatalf("refused requests appended events (head %d → %d)", head, h.head())
		}

		mail := h.mustCreate("/connections", map[string]any{"id": "mail", "name": "Audiences by mail", "direction": "upload",
			"data_type": "audiences", "method": "email", "methodology": "push", "pattern": "audiences_*.csv", "credential_id": "sftp-login"})
		if mail["pattern"] != "audiences_*.csv" || mail["folder"] != nil || mail["version"] != 1.0 || mail["credential_id"] != "sftp-login" {
			t.Fatalf("created connection = %v", mail)
		}
		pull := h.mustCreate("/connections", map[string]any{"name": "Catalog pull", "direction": "download",
			"data_type": "product_catalogs", "method": "sftp", "methodology": "pull", "folder": "/home/acme/catalogs", "credential_id": "brand-key"})
		pullID := pull["id"].(string)
		if !strings.HasPrefix(pullID, "cn_") {
			t.Fatalf("assigned id %q", pullID)
		}

		list := h.get("/connections", pull["consistency_token"].(string)).json(t)
		if list["total"] != 2.0 || len(list["items"].([]any)) != 2 {
			t.Fatalf("connection list = %v", list)
		}
		one := h.get("/connections/mail", mail["consistency_token"].(string)).json(t)
		for _, f := range []string{"id", "name", "direction", "data_type", "method", "methodology", "pattern", "folder", "credential_id", "version"} {
			if fmt.Sprint(one[f]) != fmt.Sprint(mail[f]) {
				t.Errorf("read model %s = %v, command answer %v", f, one[f], mail[f])
			}
		}
		creds := h.get("/credentials", "").json(t)
		wantUse := map[string]string{"brand-key": "[" + pullID + "]", "sftp-login": "[mail]"}
		for _, it := range creds["items"].([]any) {
			c := it.(map[string]any)
			if fmt.Sprint(c["used_by"]) != wantUse[c["id"].(string)] || c["created_at"] == nil || c["password"] != nil {
				t.Errorf("credential in the list = %v, want used_by %s", c, wantUse[c["id"].(string)])
			}
		}
		if creds["total"] != 2.0 {
			t.Fatalf("credential list = %v", creds)
		}

		// Email intake.
		for _, tc := range []struct {
			attachments []string
			accepted    bool
			files       []string
		}{
			{attachments: []string{"audiences_1.csv", "receipt_1.pdf", "audiences_2.csv"}, accepted: true, files: []string{"audiences_1.csv", "audiences_2.csv"}},
			{attachments: []string{"audiences_1.csv", "holiday.jpg"}, files: []string{}},
			{attachments: []string{"result_1.csv"}, files: []string{}},
		} {
			r := h.do("POST", "/connections/mail/check-email", map[string]any{"attachments": tc.attachments})
			v := r.json(t)
			if r.status != 200 || v["accepted"] != tc.accepted || fmt.Sprint(v["files"]) != fmt.Sprint(tc.files) || (v["reason"] == nil) == !tc.accepted {
				t.Errorf("check-email %v: %d %s", tc.attachments, r.status, r.body)
			}
		}
		if r := h.do("POST", "/connections/mail/check-email", map[string]any{}); r.status != 422 || !reflect.DeepEqual(problemFields(t, r), []string{"attachments"}) {
			t.Errorf("check-email without attachments: %d %s", r.status, r.body)
		}
		if r := h.do("POST", "/connections/"+pullID+"/check-email", map[string]any{"attachments": []string{"a.csv"}}); r.status != 409 {
			t.Errorf("check-email on an sftp connection: %d %s", r.status, r.body)
		}
		if r := h.do("POST", "/connections/nosuch/check-email", map[string]any{"attachments": []string{"a.csv"}}); r.status != 404 {
			t.Errorf("check-email on a missing connection: %d %s", r.status, r.body)
		}

		// Update.
		if r := h.do("PATCH", "/connections/mail", map[string]any{"pattern": "*"}); r.status != 422 || !reflect.DeepEqual(problemFields(t, r), []string{"pattern"}) {
			t.Errorf("PATCH to a match-all pattern: %d %s", r.status, r.body)
		}
		if r := h.do("PATCH", "/connections/mail", map[string]any{"name": nil, "pattern": nil, "direction": "upload"}); r.status != 422 ||
			!reflect.DeepEqual(problemFields(t, r), []string{"name", "pattern"}) || !strings.Contains(string(r.body), "cannot be cleared") {
			t.Fatalf("PATCH with nulls: %d %s", r.status, r.body)
		}
		if r := h.do("PATCH", "/connections/mail", map[string]any{"name": "x"}, "If-Match", "7"); r.status != 409 {
			t.Errorf("PATCH with a stale If-Match: %d %s", r.status, r.body)
		}
		r := h.do("PATCH", "/connections/mail", map[string]any{"pattern": "aud_????.csv"}, "If-Match", "1")
		if r.status != 200 || r.json(t)["pattern"] != "aud_????.csv" || r.json(t)["version"] != 2.0 {
			t.Fatalf("PATCH pattern: %d %s", r.status, r.body)
		}
		if v := h.do("POST", "/connections/mail/check-email", map[string]any{"attachments": []string{"aud_0301.csv"}}).json(t); v["accepted"] != true {
			t.Errorf("check-email after the pattern changed: %v", v)
		}

		// A credential in use cannot be deleted; once no connection uses it, it can.
		if r := h.do("DELETE", "/credentials/sftp-login", nil); r.status != 409 || !strings.Contains(string(r.body), "mail") {
			t.Fatalf("DELETE a credential in use: %d %s", r.status, r.body)
		}
		r = h.do("PATCH", "/connections/mail", map[string]any{"credential_id": "brand-key"})
		if r.status != 200 || r.json(t)["credential_id"] != "brand-key" {
			t.Fatalf("move the connection to another credential: %d %s", r.status, r.body)
		}
		moved := r.json(t)["consistency_token"].(string)
		r = h.do("DELETE", "/credentials/sftp-login", nil)
		if r.status != 204 {
			t.Fatalf("DELETE an unused credential: %d %s", r.status, r.body)
		}
		deleted := r.header.Get("X-Consistency-Token")
		if r := h.do("DELETE", "/credentials/sftp-login", nil); r.status != 204 {
			t.Fatalf("DELETE it again: %d %s", r.status, r.body)
		}
		if r := h.do("POST", "/connections", map[string]any{"name": "c", "direction": "upload", "data_type": "audiences",
			"method": "ftp", "methodology": "push", "credential_id": "sftp-login"}); r.status != 422 || !reflect.DeepEqual(problemFields(t, r), []string{"credential_id"}) {
			t.Fatalf("a connection on a deleted credential: %d %s", r.status, r.body)
		}
		h.get("/connections/mail", moved)
		creds = h.get("/credentials/brand-key", "").json(t)
		if fmt.Sprint(creds["used_by"]) != fmt.Sprint(slices.Sorted(slices.Values([]string{"mail", pullID}))) {
			t.Fatalf("brand-key used by %v", creds["used_by"])
		}
		if r := h.get("/credentials/sftp-login", deleted); r.status != 404 {
			t.Fatalf("a deleted credential is still listed: %d %s", r.status, r.body)
		}

		// Rotation of a public key: a new key, a new fingerprint.
		pub2, fp2, _ := newSSHKey(t)
		r = h.do("POST", "/credentials/brand-key/rotate", map[string]any{"public_key": pub2})
		if r.status != 200 || r.json(t)["fingerprint"] != fp2 || r.json(t)["rotated_at"] == nil {
			t.Fatalf("rotate the key: %d %s", r.status, r.body)
		}
		if r := h.do("POST", "/credentials/brand-key/rotate", map[string]any{}); r.status != 422 || !reflect.DeepEqual(problemFields(t, r), []string{"public_key"}) {
			t.Fatalf("rotate a key without one: %d %s", r.status, r.body)
		}
		if r := h.do("POST", "/credentials/brand-key/rotate", map[string]any{"public_key": pub2}); r.status != 422 || !reflect.DeepEqual(problemFields(t, r), []string{"public_key"}) {
			t.Fatalf("rotate a key to itself: %d %s", r.status, r.body)
		}
		if g := h.get("/credentials/brand-key", r.header.Get("X-Consistency-Token")).json(t); g["fingerprint"] != fp2 {
			t.Fatalf("fingerprint after rotation %v", g["fingerprint"])
		}

		// A credential's history tells who did what when, without the
		// password hash; a public key and its fingerprint stay.
		pwHist := h.expect(200, "GET", "/credentials/sftp-login/history", nil)
		if strings.Contains(string(pwHist.body), "password_hash") || strings.Contains(string(pwHist.body), "argon2") {
			t.Fatalf("a credential's history shows its password hash: %s", pwHist.body)
		}
		var types []string
		for _, it := range pwHist.json(t)["items"].([]any) {
			types = append(types, it.(map[string]any)["type"].(string))
		}
		if len(types) < 2 || types[0] != domain.TypeCredentialCreated || types[len(types)-1] != domain.TypeCredentialDeleted {
			t.Fatalf("password credential history %v", types)
		}
		keyHist := h.expect(200, "GET", "/credentials/brand-key/history?type="+domain.TypeCredentialRotated, nil).json(t)["items"].([]any)
		if len(keyHist) != 1 || keyHist[0].(map[string]any)["data"].(map[string]any)["secret"].(map[string]any)["fingerprint"] != fp2 {
			t.Fatalf("public key rotation in the history: %v", keyHist)
		}

		// Delete: the connection stops accepting files; its history stays.
		r = h.do("DELETE", "/connections/mail", nil)
		if r.status != 204 {
			t.Fatalf("DELETE connection: %d %s", r.status, r.body)
		}
		if g := h.get("/connections/mail", r.header.Get("X-Consistency-Token")); g.status != 404 {
			t.Fatalf("GET a deleted connection: %d %s", g.status, g.body)
		}
		if r := h.do("POST", "/connections/mail/check-email", map[string]any{"attachments": []string{"aud_0301.csv"}}); r.status != 409 {
			t.Fatalf("check-email on a deleted connection: %d %s", r.status, r.body)
		}
		if r := h.do("PATCH", "/connections/mail", map[string]any{"name": "again"}); r.status != 404 {
			t.Fatalf("PATCH a deleted connection: %d %s", r.status, r.body)
		}
		if c := h.storedConnection("mail"); !c.Exists() || c.Live() || c.State().Pattern != "aud_????.csv" {
			t.Fatalf("the deleted connection's history is gone: %+v", c.State())
		}
		if g := h.get("/credentials/brand-key", "").json(t); fmt.Sprint(g["used_by"]) != "["+pullID+"]" {
			t.Fatalf("brand-key used by %v after the deletion", g["used_by"])
		}
		if list := h.get("/connections", "").json(t); list["total"] != 1.0 {
			t.Fatalf("connection list after the deletion = %v", list)
		}

		// The read model is rebuildable: a rebuild from the log gives the
		// same keys as the live generation, and a second one again.
		ctx := context.Background()
		if err := h.app.WaitCaughtUp(ctx); err != nil {
			t.Fatal(err)
		}
		live := keysOf(t, h.app.Redis, "connections", h.app.Generation("connections"))
		res, err := projections.Rebuild(ctx, h.app.Redis, h.app.Store, projections.Connections{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		rebuilt := keysOf(t, h.app.Redis, "connections", res.NewGeneration)
		if fmt.Sprint(live) != fmt.Sprint(rebuilt) || len(live) < 5 {
			t.Fatalf("rebuilt read model differs from the live one:\nlive    %v\nrebuilt %v", live, rebuilt)
		}
		deadline := time.Now().Add(5 * time.Second)
		for h.app.Generation("connections") != res.NewGeneration && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if list := h.get("/credentials", "").json(t); list["total"] != 1.0 {
			t.Fatalf("credential list after the rebuild = %v", list)
		}
	})
}

const dbCredentialVersion = 36

// A credential's version, as shown, is the one If-Match is checked
// against: connections attaching to it and detaching from it move it.
func TestCredentialVersionFollowsItsConnections(t *testing.T) {
	backends(t, dbCredentialVersion, func(t *testing.T, h *harness) {
		h.mustCreate("/credentials", map[string]any{"id": "login", "name": "Login", "type": "password"})
		h.mustCreate("/connections", map[string]any{"id": "up", "name": "Up", "direction": "upload", "data_type": "audiences",
			"method": "sftp", "methodology": "push", "credential_id": "login"})
		shown := func(want float64, usedBy []any) {
			t.Helper()
			if err := h.app.WaitCaughtUp(t.Context()); err != nil {
				t.Fatal(err)
			}
			r := h.expect(200, "GET", "/credentials/login", nil)
			if got := r.json(t); got["version"] != want || !reflect.DeepEqual(got["used_by"], usedBy) {
				t.Fatalf("credential shown as %v, want version %v used by %v", got, want, usedBy)
			}
			if r.header.Get("ETag") != "" && r.header.Get("ETag") != fmt.Sprintf(`"%d"`, int(want)) {
				t.Fatalf("ETag %s, want version %v", r.header.Get("ETag"), want)
			}
		}
		shown(2, []any{"up"}) // created, connection attached
		h.expect(200, "POST", "/credentials/login/rotate", map[string]any{}, "If-Match", "2")
		shown(3, []any{"up"})
		h.expect(204, "DELETE", "/connections/up", nil)
		shown(4, []any{})
		h.expect(200, "POST", "/credentials/login/rotate", map[string]any{}, "If-Match", "4")
		shown(5, []any{})
	})
}
