package projections

import (
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

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
//	sort:namelex              zset  "<NameKey>\x00<partner ID>", score 0: the
//	                                name sort to the last character
//	namekey                   hash  partner ID → its NameKey
//	partners                  zset  partner IDs, score 0 (sort by partner_id)
//	ng:<g>                    set   partner IDs where the 3-character g occurs
//	                                in name, ID or URL (lower case), or the
//	                                1- or 2-character g ends one of them
//	ngr                       zset  every g of the sets above (score 0, raw
//	                                text), for finding those that begin with
//	                                a 1- or 2-character q (ZRANGEBYLEX)
//	search                    hash  partner ID → "name\nid\nurl" in lower case,
//	                                for checking a longer q against its candidates
//
// Filter values, custom field names and n-grams are escaped by IndexPart
// (bytes outside [A-Za-z0-9_.-] become %XX), so a value holding ':' or a
// brace can never make two keys collide or break the hash tag.
const (
	recentlyExpiredKey = "recently_expired"
	searchKey          = "search"
	gramRegistryKey    = "ngr"
)

// PartnersLayout is the version of the partners projection's key layout.
// A generation built with an older layout is rebuilt when partnerd starts
// (see Layouted). Layout 1 kept a set per 1-, 2- and 3-gram (~80 sets a
// partner on the bench's data, 80 % of Redis's time in a rebuild); layout
// 2 (never released) dropped the 2-gram sets; layout 3 keeps one gram per
// position of a part: the 3 characters starting there, or the 1 or 2 that
// end the part (~34 sets a partner), and a q of 1 or 2 characters is the
// union of the sets of the grams it begins (the registry ngr). Layout 4
// changed only the name sort's scores (NameScore: accented letters as
// their base letter, other scripts after z; layout 3 put both before a).
// Layout 5 changed only them too: a letter of another script counts by
// its code point (layout 4 tied them all). Layout 6 added sort:namelex and
// namekey: the name sort orders by the whole name (layout 5 by its first
// ten characters, then partner ID). Layout 7 folds the search text with
// domain.FoldCase (the Greek final sigma as σ; layout 6 kept ς, which a
// search typed in capitals never met).
const PartnersLayout = 7

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

// GramRegistryKey is the sorted set of the grams that have a set
// (NGramKey), members the grams themselves, score 0.
func (k Keyspace) GramRegistryKey() string { return k.Key(gramRegistryKey) }

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

// NameLexKey is the sorted set of "<NameKey>\x00<partner ID>", score 0:
// the name sort in full, read by ZRANGEBYLEX (layout 6).
func (k Keyspace) NameLexKey() string { return k.Key("sort", "namelex") }

// NameKeysKey is the hash of each partner's NameKey (layout 6).
func (k Keyspace) NameKeysKey() string { return k.Key("namekey") }

// NameScore maps a name to a sorted-set score that orders names case-
// insensitively by their first 10 digits of base 39, which fit the 53 bits
// a double holds exactly (39^10 < 2^53): 0 end of name, 1 space,
// punctuation and any other character, 2–11 digits, 12–37 the letters a–z,
// and 38 then four digits of its code point for a letter of another
// script. So a Latin name counts by its first 10 characters, a Cyrillic,
// Greek or CJK one by its first two (in code point order: the alphabet's
// for Cyrillic and Greek). Accented letters count as their base letter
// (É as e, ß as ss, й as и), so "Épsilon" sorts between "Delta" and
// "Foxtrot", not before "A". Names equal in those digits tie and are
// ordered by partner ID.
func NameScore(name string) float64 { return nameKeyScore(nameKey(name, 10)) }

// nameKeyScore is NameScore of the name whose NameKey (or its first ten
// digits at least) is key.
func nameKeyScore(key string) float64 {
	var n int64
	for i := 0; i < 10; i++ {
		n *= 39
		if i < len(key) {
			n += int64(key[i] - 'A')
		}
	}
	return float64(n)
}

// NameKey is the whole name in NameScore's digits, one byte each ('A' + the
// digit): byte order is name order to the last character (a name that is
// a prefix of another first), where NameScore stops at the tenth. The name
// sort pages by it (the sorted set NameLexKey), so names alike in their
// first ten characters ("Globex Corporation Zeta" / "… Alpha") no longer
// fall back to partner ID order. At most maxNameKey digits are kept.
func NameKey(name string) string { return nameKey(name, maxNameKey) }

// maxNameKey bounds a NameKey (names are at most 200 characters; a letter
// of another script takes five digits).
const maxNameKey = 1000

// nameKey is the first max base-39 digits of name (see NameScore), one
// byte each ('A' + the digit).
func nameKey(name string, max int) string {
	b := make([]byte, 0, min(len(name)+4, max))
	digit := func(d int64) {
		if len(b) < max {
			b = append(b, byte('A'+d))
		}
	}
	lower := strings.ToLower(name)
	if !isASCII(lower) {
		lower = norm.NFD.String(lower)
	}
	for _, r := range lower {
		if len(b) >= max {
			break
		}
		switch {
		case r >= '0' && r <= '9':
			digit(2 + int64(r-'0'))
		case r >= 'a' && r <= 'z':
			digit(12 + int64(r-'a'))
		case r < utf8.RuneSelf:
			digit(1)
		case unicode.Is(unicode.Mn, r):
			// a combining accent of the letter before it (after NFD)
		case latinFolds[r] != "":
			for _, c := range latinFolds[r] {
				digit(12 + int64(c-'a'))
			}
		case unicode.IsLetter(r):
			// After z, then by code point (four base-39 digits hold any):
			// Cyrillic and Greek names in alphabet order, and other
			// scripts at least apart, on their first two letters.
			digit(38)
			for p := int64(39 * 39 * 39); p > 0; p /= 39 {
				digit(int64(r) / p % 39)
			}
		default:
			digit(1)
		}
	}
	return string(b)
}

// latinFolds are the Latin letters NFD does not decompose into a base
// letter and accents.
var latinFolds = map[rune]string{'ß': "ss", 'æ': "ae", 'œ': "oe", 'ø': "o", 'ł': "l", 'đ': "d", 'ð': "d", 'þ': "th", 'ı': "i", 'ŋ': "n", 'ħ': "h"}

// SearchText is the lower-case searchable text of a partner: name, ID, URL.
func SearchText(s domain.PartnerState) []string {
	return []string{domain.FoldCase(s.Profile.Name), domain.FoldCase(s.PartnerID), domain.FoldCase(s.Profile.URL)}
}

// NGrams returns the distinct n-grams of the parts that have a search set
// (see eachNGram), sorted.
func NGrams(parts ...string) []string {
	var out []string
	eachNGram(parts, func(g string) { out = append(out, g) })
	slices.Sort(out)
	return slices.Compact(out)
}

// eachNGram calls fn, duplicates included, with the gram at each position
// of each part: the 3 characters starting there, or the 1 or 2 left at
// the end. An occurrence of any q starts at some position, so q of 1-3
// characters is a prefix of that position's gram: q of 3 is one gram's
// set, q of 1 or 2 the union of the sets of the grams it begins, and a
// longer q the intersection of its 3-grams, checked against the text.
// N-grams never span two parts. ASCII parts (the common case) yield
// substrings of the parts themselves, without copies.
func eachNGram(parts []string, fn func(string)) {
	for _, p := range parts {
		if !utf8.ValidString(p) {
			p = strings.ToValidUTF8(p, "?")
		}
		if isASCII(p) {
			for i := range len(p) {
				fn(p[i:min(i+3, len(p))])
			}
			continue
		}
		rs := []rune(p)
		for i := range rs {
			fn(string(rs[i:min(i+3, len(rs))]))
		}
	}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// partnerIndex is what one partner contributes to the indexes: the sets it
// is a member of, its score in each sorted set, and its searchable text.
// N-gram sets are derived from search only when needed (see grams).
type partnerIndex struct {
	sets    []string // filter and custom-field sets
	scores  []scored
	search  string
	nameKey string // NameKey of the name ("" for a partner that does not exist)
}

type scored struct {
	key   string
	score float64
}

// gramKeys caches n-gram → key across the partners of one batch, which
// share most of their n-grams, and dedupes one partner's n-grams: an entry
// seen under the current stamp is a repeat (cheaper than sorting the ~100
// n-grams of a partner, or a set per partner).
type gramKeys struct {
	ks    Keyspace
	keys  map[string]*gramEntry
	grams map[string]string // key → gram
	stamp uint32
}

func newGramKeys(ks Keyspace) *gramKeys {
	return &gramKeys{ks: ks, keys: map[string]*gramEntry{}, grams: map[string]string{}}
}

type gramEntry struct {
	key   string
	stamp uint32
	ops   *keyOps // the batch's writes to key, once it has any
}

// registered tells whether key is an n-gram set (whose gram goes in the
// registry), and which gram it is.
func (gk *gramKeys) registered(key string) (string, bool) {
	if gk == nil {
		return "", false
	}
	g, ok := gk.grams[key]
	return g, ok
}

// grams returns the distinct n-gram sets of the partner's search text.
func (ix partnerIndex) grams(gk *gramKeys) []*gramEntry {
	if ix.search == "" {
		return nil
	}
	gk.stamp++
	out := make([]*gramEntry, 0, 2*len(ix.search))
	eachNGram(strings.Split(ix.search, "\n"), func(g string) {
		e := gk.keys[g]
		if e == nil {
			e = &gramEntry{key: gk.ks.NGramKey(g)}
			gk.keys[g] = e
			gk.grams[e.key] = g
		}
		if e.stamp != gk.stamp {
			e.stamp = gk.stamp
			out = append(out, e)
		}
	})
	return out
}

// indexOf derives a partner's index entries (keys are full keys of ks).
// A partner that does not exist has none.
func indexOf(ks Keyspace, s domain.PartnerState) partnerIndex {
	var ix partnerIndex
	if s.PartnerID == "" {
		return ix
	}
	add := func(field, v string) {
		if v != "" {
			ix.sets = append(ix.sets, ks.FilterKey(field, v))
		}
	}
	// The values filters share with segment conditions come from
	// domain.FactsOf, the one definition of each field's value.
	f := domain.FactsOf(s)
	add("status", domain.ContractStatus(s))
	add("contract_stage", f.ContractStage)
	add("template_term", f.TemplateTerm)
	if c := s.Contract; c != nil {
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
			ix.scores = append(ix.scores, scored{ks.RecentlyExpiredKey(), float64(at.UnixMilli())})
		}
	}
	for _, g := range f.Groups {
		add("group", g)
	}
	add("relationship_type", f.RelationshipType)
	add("relationship_stage", domain.RelationshipStage(s))
	add("prospect_stage", f.ProspectStage)
	add("country", f.Country)
	add("state", f.State)
	add("size", f.Size)
	add("business_model", f.BusinessModel)
	add("assigned_to", f.AssignedTo)
	add("prospecting_source", f.ProspectingSource)
	for name, v := range f.Custom {
		if v != "" {
			ix.sets = append(ix.sets, ks.CustomKey(name, v))
		}
	}
	ix.search = strings.Join(SearchText(s), "\n")
	ix.nameKey = NameKey(f.Name)
	ix.scores = append(ix.scores, scored{ks.SortKey("name"), nameKeyScore(ix.nameKey)})
	joined := -1.0
	if f.DateJoined != nil {
		joined = float64(f.DateJoined.UnixMilli())
	}
	ix.scores = append(ix.scores, scored{ks.SortKey("date_joined"), joined})
	reach := -1.0
	if f.SocialReach != nil {
		reach = float64(*f.SocialReach)
	}
	ix.scores = append(ix.scores, scored{ks.SortKey("social_reach"), reach})
	ix.scores = append(ix.scores, scored{ks.SortKey("partner_id"), 0})
	return ix
}

// indexWrites gathers the index changes of a whole batch and merges them
// per key: one SADD/SREM/ZADD/ZREM per key with every member it gains or
// loses, one HSET of the search hash. Each partner contributes one diff
// (its state before the batch against its state after it), so a member is
// never both added to and removed from the same key, and the order of the
// merged commands does not matter.
type indexWrites struct {
	order    []string // keys in first-use order, for deterministic output
	ops      map[string]*keyOps
	texts    []any // search hash field, value, …
	nameKeys []any // name key hash field, value, …
	ks       Keyspace
	gkeys    *gramKeys // n-gram keys of ks
}

type keyOps struct {
	add, rem []any
	zadd     []any // score, member, …
	zrem     []any
}

func (iw *indexWrites) at(k string) *keyOps {
	if iw.ops == nil {
		iw.ops = map[string]*keyOps{}
	}
	o := iw.ops[k]
	if o == nil {
		o = &keyOps{}
		iw.ops[k] = o
		iw.order = append(iw.order, k)
	}
	return o
}

// diff records the changes that move partner id from old to cur.
func (iw *indexWrites) diff(ks Keyspace, id string, old, cur partnerIndex) {
	if iw.gkeys == nil || iw.ks != ks {
		iw.gkeys = newGramKeys(ks)
	}
	iw.ks = ks
	var idv any = id // boxed once, not once per key it joins
	diffSets(old.sets, cur.sets, func(k string) { o := iw.at(k); o.rem = append(o.rem, idv) },
		func(k string) { o := iw.at(k); o.add = append(o.add, idv) })
	if old.search != cur.search {
		iw.diffGrams(old.grams(iw.gkeys), cur.grams(iw.gkeys), idv)
		if cur.search != "" {
			iw.texts = append(iw.texts, idv, cur.search)
		} else {
			// Deleted partners keep no search text.
			o := iw.at(ks.SearchKey())
			o.rem = append(o.rem, idv)
		}
	}
	if old.nameKey != cur.nameKey || (old.scores == nil) != (cur.scores == nil) {
		// The name sort's lex entry "<NameKey>\x00<id>" and the ID's key.
		if old.scores != nil {
			o := iw.at(ks.NameLexKey())
			o.zrem = append(o.zrem, old.nameKey+"\x00"+id)
		}
		if cur.scores != nil {
			o := iw.at(ks.NameLexKey())
			o.zadd = append(o.zadd, "0", cur.nameKey+"\x00"+id)
			iw.nameKeys = append(iw.nameKeys, idv, cur.nameKey)
		} else {
			o := iw.at(ks.NameKeysKey())
			o.rem = append(o.rem, idv)
		}
	}
	for _, os := range old.scores {
		if !slices.ContainsFunc(cur.scores, func(c scored) bool { return c.key == os.key }) {
			o := iw.at(os.key)
			o.zrem = append(o.zrem, idv)
		}
	}
	for _, cs := range cur.scores {
		i := slices.IndexFunc(old.scores, func(o scored) bool { return o.key == cs.key })
		if i < 0 || old.scores[i].score != cs.score {
			o := iw.at(cs.key)
			o.zadd = append(o.zadd, strconv.FormatFloat(cs.score, 'g', -1, 64), idv)
		}
	}
}

// diffGrams records id leaving the n-gram sets only in old and joining
// those only in cur. Entries come from one gramKeys, so a gram is one
// pointer, and each entry keeps its keyOps (no map lookup per partner and
// gram: a rebuild makes ~50 of these per partner).
func (iw *indexWrites) diffGrams(old, cur []*gramEntry, id any) {
	ops := func(e *gramEntry) *keyOps {
		if e.ops == nil {
			e.ops = iw.at(e.key)
		}
		return e.ops
	}
	diffSets(old, cur, func(e *gramEntry) { o := ops(e); o.rem = append(o.rem, id) },
		func(e *gramEntry) { o := ops(e); o.add = append(o.add, id) })
}

// diffSets calls rem for the members only in old and add for those only
// in cur.
func diffSets[T comparable](old, cur []T, rem, add func(T)) {
	if len(old) == 0 {
		for _, k := range cur {
			add(k)
		}
		return
	}
	in := make(map[T]bool, len(old))
	for _, k := range old {
		in[k] = true
	}
	for _, k := range cur {
		if in[k] {
			delete(in, k)
		} else {
			add(k)
		}
	}
	for _, k := range old {
		if in[k] {
			rem(k)
		}
	}
}

// flush appends the merged writes to w.
func (iw *indexWrites) flush(w *Writes) {
	for _, k := range iw.order {
		o := iw.ops[k]
		if k == iw.ks.SearchKey() || k == iw.ks.NameKeysKey() {
			if len(o.rem) > 0 {
				w.HDel(k, o.rem...)
			}
			continue
		}
		if g, ok := iw.gkeys.registered(k); ok {
			if len(o.rem) > 0 {
				w.GramRem(k, iw.ks.GramRegistryKey(), g, o.rem...)
			}
			if len(o.add) > 0 {
				w.GramAdd(k, iw.ks.GramRegistryKey(), g, o.add...)
			}
			continue
		}
		if len(o.rem) > 0 {
			w.SRem(k, o.rem...)
		}
		if len(o.add) > 0 {
			w.SAdd(k, o.add...)
		}
		if len(o.zrem) > 0 {
			w.ZRem(k, o.zrem...)
		}
		if len(o.zadd) > 0 {
			w.op("ZADD", k, o.zadd...)
		}
	}
	if len(iw.texts) > 0 {
		w.HSet(iw.ks.SearchKey(), iw.texts...)
	}
	if len(iw.nameKeys) > 0 {
		w.HSet(iw.ks.NameKeysKey(), iw.nameKeys...)
	}
}

// FormatScore renders a score as Redis does for the integral scores used here.
func FormatScore(s float64) string { return strconv.FormatFloat(s, 'f', -1, 64) }
