package commands

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"

	"github.com/partnerd/partnerd/domain"
)

// An access link token is "<payload>.<mac>", both unpadded base64url:
// payload is the JSON of accessClaims, mac the HMAC-SHA256 of
// accessMACContext + payload under the server's access link secret. The
// token is never stored: events keep only the link ID and expiry.
const (
	accessTokenVersion = 1
	accessMACContext   = "partnerd access link v1\n"
	maxAccessTokenLen  = 1024
)

// accessClaims is what an access link token says.
type accessClaims struct {
	V       int    `json:"v"`
	Purpose string `json:"pur"` // always domain.AccessLinkPurpose
	Program string `json:"prg"`
	Partner string `json:"ptn"`
	Link    string `json:"lid"`
	Exp     int64  `json:"exp"` // unix seconds
}

func accessMAC(secret []byte, payload string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(accessMACContext))
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// signAccessToken returns the signed token of the claims.
func signAccessToken(secret []byte, c accessClaims) string {
	raw, _ := json.Marshal(c) // plain strings and numbers: cannot fail
	payload := base64.RawURLEncoding.EncodeToString(raw)
	return payload + "." + base64.RawURLEncoding.EncodeToString(accessMAC(secret, payload))
}

// verifyAccessToken checks the token's MAC (in constant time) and shape and
// returns its claims. It does not check the expiry: the partner's decision
// does, to tell an expired link from a forged one.
func verifyAccessToken(secret []byte, token string) (accessClaims, bool) {
	if len(token) > maxAccessTokenLen {
		return accessClaims{}, false
	}
	payload, sig, ok := strings.Cut(token, ".")
	if !ok {
		return accessClaims{}, false
	}
	mac, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(mac, accessMAC(secret, payload)) {
		return accessClaims{}, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return accessClaims{}, false
	}
	var c accessClaims
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if dec.Decode(&c) != nil || c.V != accessTokenVersion || c.Purpose != domain.AccessLinkPurpose ||
		!domain.ValidEntityID(c.Partner) || !domain.ValidEntityID(c.Link) || c.Exp <= 0 {
		return accessClaims{}, false
	}
	return c, true
}

// AccessLink is an issued access link, shown once to the caller.
type AccessLink struct {
	LinkID    string
	Token     string
	URL       string
	ExpiresAt time.Time
}

// accessURL is the link a partner opens: the partner app's page with the
// token appended as the query parameter "token".
func accessURL(base, token string) string {
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "token=" + token
}
