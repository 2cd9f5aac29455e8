package projections

import (
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/partnerd/partnerd/domain"
)

// The list screen's indexes (all under the program's keyspace, so one
// program's keys share one Redis Cluster slot and one Lua step may touch
// them all):
//
//	idx:<filter>:<v>          set   partner IDs whose <filter> has value v
//	idx:custom:<name>:<v>     set   partner IDs whose custom field <name> is v
//	recently_expired          zset  partner IDs whose contract is expired,
//	                                scored by the expiry time (unix ms); the
//	                                query keeps the last 30 days by score
//	sort:name                 zset  partner IDs scored by NameScore
//	sort:date_joined          zset  partner IDs scored by date joined (unix ms; -1 never joined)
//	sort:social_reach         zset  partner IDs scored by social reach (-1 unknown)
//	partners                  zset  partner IDs, score 0 (sort by partner_id)
//	ng:<g>                    set   partner IDs whose name, ID or URL (lower
//	                                case) contains the 1-, 2- or 3-character n-gram g
//	search                    hash  partner ID → "name\nid\nurl" in lower case,
//	                                for checking a longer q against its candidates
//
// Filter values, custom field names and n-grams are escaped by IndexPart
// (bytes outside [A-Za-z0-9_.-] become %XX), so a value holding ':' or a
// brace can never make two keys collide or break the hash tag.
const (
	recentlyExpiredKey = "recently_expired"
	searchKey          = "search"
)

// Filter names of the list screen (API.md GET /partners), with custom.<name> apart.
var PartnerFilters = []string{"status", "contract_stage", "group", "template_term", "terms_update",
	"relationship_type", "relationship_stage", "prospect_stage", "country", "state", "size",
	"business_model", "assigned_to", "prospecting_source"}

// TermsUpdatePendingProposal and TermsUpdateRecentlyExpired are the terms_update filter values.
const (
	TermsUpdatePendingProposal = "pending_proposal"
	TermsUpdateRecentlyExpired = "recently_expired"
	// RecentlyExpiredWindow is how long after its expiry a contract counts as recently expired.
	RecentlyExpiredWindow = 30 * 24 * time.Hour
)

// IndexPart escapes one part of an index key: bytes outside [A-Za-z0-9_.-]
// become %XX (upper-case hex), so parts never contain ':' '{' '}' or '%'
// unescaped and the mapping is one to one.
func IndexPart(v string) string {
	ok := true
	for i := 0; i < len(v); i++ {
		if !plainByte(v[i]) {
			ok = false
			break
		}
	}
	if ok {
		return v
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if plainByte(c) {
			b.WriteByte(c)
		} else {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

func plainByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-'
}

// FilterKey is the index set of one filter value (field from PartnerFilters).
func (k Keyspace) FilterKey(field, value string) string {
	return k.Key("idx", field, IndexPart(value))
}

// CustomKey is the index set of one custom field value.
func (k Keyspace) CustomKey(name, value string) string {
	return k.Key("idx", "custom", IndexPart(name), IndexPart(value))
}

// NGramKey is the search set of one n-gram (1–3 characters, lower case).
func (k Keyspace) NGramKey(gram string) string { return k.Key("ng", IndexPart(gram)) }

// SortKey is the sorted set of a sort key; "partner_id" is the partners zset.
func (k Keyspace) SortKey(sort string) string {
	if sort == "partner_id" {
		return k.Key("partners")
	}
	return k.Key("sort", sort)
}

// RecentlyExpiredKey is the zset of expired partners by expiry time.
func (k Keyspace) RecentlyExpiredKey() string { return k.Key(recentlyExpiredKey) }

// SearchKey is the hash of each partner's searchable text.
func (k Keyspace) SearchKey() string { return k.Key(searchKey) }

// NameScore maps a name to a sorted-set score that orders names case-
// insensitively by their first 10 characters: each character becomes a
// digit of base 38 (0 end of name, 1 space, punctuation and any other
// character, 2–11 digits, 12–37 letters), which fits the 53 bits a double
// holds exactly. Names equal in those 10 characters tie and are ordered by
// partner ID.
func NameScore(name string) float64 {
	var n int64
	i := 0
	for _, r := range strings.ToLower(name) {
		if i == 10 {
			break
		}
		var d int64 = 1
		switch {
		case r >= '0' && r <= '9':
			d = 2 + int64(r-'0')
		case r >= 'a' && r <= 'z':
			d = 12 + int64(r-'a')
		}
		n = n*38 + d
		i++
	}
	for ; i < 10; i++ {
		n *= 38
	}
	return float64(n)
}

// SearchText is the lower-case searchable text of a partner: name, ID, URL.
func SearchText(s domain.PartnerState) []string {
	return []string{strings.ToLower(s.Profile.Name), strings.ToLower(s.PartnerID), strings.ToLower(s.Profile.URL)}
}

// NGrams returns the distinct 1-, 2- and 3-character n-grams of the parts
// (n-grams never span two parts).
func NGrams(parts ...string) []string {
	seen := map[string]bool{}
	for _, p := range parts {
		if !utf8.ValidString(p) {
			p = strings.ToValidUTF8(p, "?")
		}
		rs := []rune(p)
		for i := range rs {
			for n := 1; n <= 3 && i+n <= len(rs); n++ {
				seen[string(rs[i:i+n])] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for g := range seen {
		out = append(out, g)
	}
	sort.Strings(out)
	return out
}

// partnerIndex is what one partner contributes to the indexes: the sets it
// is a member of and its score in each sorted set.
type partnerIndex struct {
	sets   map[string]bool
	scores map[string]float64
	search string
}

// indexOf derives a partner's index entries (keys are full keys of ks).
// A partner that does not exist has none.
func indexOf(ks Keyspace, s domain.PartnerState) partnerIndex {
	ix := partnerIndex{sets: map[string]bool{}, scores: map[string]float64{}}
	if s.PartnerID == "" {
		return ix
	}
	add := func(field, v string) {
		if v != "" {
			ix.sets[ks.FilterKey(field, v)] = true
		}
	}
	add("status", domain.ContractStatus(s))
	if c := s.Contract; c != nil {
		add("contract_stage", string(c.Stage))
		add("template_term", c.TemplateTermID)
		if c.Stage.Negotiating() {
			add("terms_update", TermsUpdatePendingProposal)
		}
		if c.Stage == domain.StageExpired {
			at := c.StageChangedAt
			switch {
			case c.EndedAt != nil:
				at = *c.EndedAt
			case c.EndDate != nil:
				at = *c.EndDate
			}
			ix.scores[ks.RecentlyExpiredKey()] = float64(at.UnixMilli())
		}
	}
	for _, g := range s.Groups {
		add("group", g)
	}
	p := s.Profile
	add("relationship_type", p.RelationshipType)
	add("relationship_stage", domain.RelationshipStage(s))
	add("prospect_stage", domain.ProspectStageOf(s))
	add("country", p.Country)
	add("state", p.State)
	add("size", p.Size)
	add("business_model", p.BusinessModel)
	add("assigned_to", s.AssignedTo)
	add("prospecting_source", p.ProspectingSource)
	for name, v := range p.CustomFields {
		if v != "" {
			ix.sets[ks.CustomKey(name, v)] = true
		}
	}
	text := SearchText(s)
	for _, g := range NGrams(text...) {
		ix.sets[ks.NGramKey(g)] = true
	}
	ix.search = strings.Join(text, "\n")
	ix.scores[ks.SortKey("name")] = NameScore(p.Name)
	joined := -1.0
	if s.DateJoined != nil {
		joined = float64(s.DateJoined.UnixMilli())
	}
	ix.scores[ks.SortKey("date_joined")] = joined
	reach := -1.0
	if p.SocialReach != nil {
		reach = float64(*p.SocialReach)
	}
	ix.scores[ks.SortKey("social_reach")] = reach
	ix.scores[ks.SortKey("partner_id")] = 0
	return ix
}

// planIndex appends the writes that move a partner from its old index
// entries to its new ones.
func planIndex(w *Writes, ks Keyspace, id string, old, cur partnerIndex) {
	for _, k := range sortedKeys(old.sets) {
		if !cur.sets[k] {
			w.SRem(k, id)
		}
	}
	for _, k := range sortedKeys(cur.sets) {
		if !old.sets[k] {
			w.SAdd(k, id)
		}
	}
	for _, k := range sortedKeys(old.scores) {
		if _, ok := cur.scores[k]; !ok {
			w.ZRem(k, id)
		}
	}
	for _, k := range sortedKeys(cur.scores) {
		if s, ok := old.scores[k]; !ok || s != cur.scores[k] {
			w.ZAdd(k, cur.scores[k], id)
		}
	}
	if cur.search != old.search {
		w.HSet(ks.SearchKey(), id, cur.search)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// FormatScore renders a score as Redis does for the integral scores used here.
func FormatScore(s float64) string { return strconv.FormatFloat(s, 'f', -1, 64) }
