package queries

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/projections"
)

// PartnerSorts are the sort keys of the partner list.
var PartnerSorts = []string{"name", "date_joined", "social_reach", "partner_id"}

// PartnerListQuery is a filtered, sorted partner list (API.md GET /partners).
type PartnerListQuery struct {
	// Q searches name, partner ID and URL (case-insensitive substring).
	Q string
	// Filters maps a filter (projections.PartnerFilters, or "custom.<name>")
	// to the values of which any must match; different filters must all match.
	Filters map[string][]string
	// Sort is one of PartnerSorts ("" = partner_id); Desc reverses it.
	Sort string
	Desc bool
	// Now is the clock for terms_update=recently_expired (zero = time.Now()).
	Now time.Time
}

// ErrBadCursor: a cursor this server did not issue (or one of another sort).
var ErrBadCursor = errors.New("cursor is not one this server issued")

// partnerCursor is the position after an item: the sort, the item's score
// and its ID, opaque (base64url) for every sort, the default partner ID
// order too, so that a cursor this server did not issue is refused rather
// than read as a partner ID.
func partnerCursor(sort, score, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(sort + "\x00" + score + "\x00" + id))
}

func parsePartnerCursor(c, sort string) (score, id string, err error) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return "", "", ErrBadCursor
	}
	parts := strings.Split(string(raw), "\x00")
	if len(parts) != 3 || parts[0] != sort || parts[2] == "" {
		return "", "", ErrBadCursor
	}
	if key, ok := strings.CutPrefix(parts[1], nameKeyCursor); ok {
		// The name sort (layout 6): the item's NameKey, bytes 'A'…'g'.
		for i := 0; i < len(key); i++ {
			if key[i] < 'A' || key[i] > 'A'+38 {
				return "", "", ErrBadCursor
			}
		}
		if !domain.ValidEntityID(parts[2]) {
			return "", "", ErrBadCursor
		}
		return parts[1], parts[2], nil
	}
	if f, err := strconv.ParseFloat(parts[1], 64); err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return "", "", ErrBadCursor
	}
	if sort == "partner_id" && !domain.ValidEntityID(parts[2]) {
		return "", "", ErrBadCursor
	}
	return parts[1], parts[2], nil
}

// nameKeyCursor marks a name sort cursor's position: "k:" + the item's
// NameKey instead of a score.
const nameKeyCursor = "k:"

// idCursor is the cursor after partner id of a list in partner ID order
// (segment members, a segment preview): the default-sort list cursor.
func idCursor(id string) string { return partnerCursor("partner_id", "0", id) }

// parseIDCursor reads an idCursor (ErrBadCursor for anything else).
func parseIDCursor(c string) (string, error) {
	_, id, err := parsePartnerCursor(c, "partner_id")
	return id, err
}

// pageScript reads one page of the sorted set KEYS[1] (the sort zset itself,
// or a temporary intersection of it with the filters), after the cursor
// (score ARGV[4], ID ARGV[5]). When ARGV[6] is not empty it first drops
// members whose searchable text (hash KEYS[2]) does not contain it; that
// only happens on a temporary key (ARGV[7] = '1'). It returns {total, start,
// {id, score, …}}. The cursor's item need not be in the set any more: its
// position is where it would sort.
const pageScript = `
local R = KEYS[1]
local limit = tonumber(ARGV[1])
local desc = ARGV[2] == '1'
local s, id, q = ARGV[4], ARGV[5], ARGV[6]
local temp = ARGV[7] == '1'
` + dropMissingQ + `
local total = redis.call('ZCARD', R)
local start = 0
local function rank(m)
  if desc then return redis.call('ZREVRANK', R, m) end
  return redis.call('ZRANK', R, m)
end
if ARGV[3] == '1' then
  local sc = redis.call('ZSCORE', R, id)
  if sc and tonumber(sc) == tonumber(s) then
    start = rank(id) + 1
  elseif (not sc) and temp then
    redis.call('ZADD', R, s, id)
    start = rank(id)
    redis.call('ZREM', R, id)
  else
    local ties = redis.call('ZRANGEBYSCORE', R, s, s)
    if desc then
      start = redis.call('ZCOUNT', R, '(' .. s, '+inf')
      for _, m in ipairs(ties) do if m > id then start = start + 1 end end
    else
      start = redis.call('ZCOUNT', R, '-inf', '(' .. s)
      for _, m in ipairs(ties) do if m < id then start = start + 1 end end
    end
  end
end
local items
if limit <= 0 then
  items = {}
elseif desc then
  items = redis.call('ZREVRANGE', R, start, start + limit - 1, 'WITHSCORES')
else
  items = redis.call('ZRANGE', R, start, start + limit - 1, 'WITHSCORES')
end
return {total, start, items}
`

// dropMissingQ is the page scripts' first step: on a temporary result R
// (temp), drop the members whose searchable text (hash KEYS[2]) does not
// contain q, when q is not empty.
const dropMissingQ = `
if q ~= '' and temp then
  local ms = redis.call('ZRANGE', R, 0, -1)
  for _, m in ipairs(ms) do
    local t = redis.call('HGET', KEYS[2], m)
    if (not t) or (not string.find(t, q, 1, true)) then redis.call('ZREM', R, m) end
  end
end
`

// namePageScript is pageScript for the name sort of layout 6: it pages
// by the whole name, through the sorted set KEYS[3] of "<NameKey>\0<id>"
// (score 0, so Redis orders it by bytes), after the cursor's entry ARGV[4].
// Over the sort zset itself (no filter) it reads that set; over a
// temporary result of at most smallNameSet members it writes their
// entries (NameKeys from hash KEYS[4]) to the scratch zset KEYS[5] and
// reads that; over a larger result it walks the whole set and keeps the
// entries whose ID is in the result (at least one in smallNameSet/size of
// the program). ARGV[6] is a q to check as in pageScript. It returns
// {total, {entry, …}} with up to limit + 1 entries: one more than the page
// tells there is a next one.
const namePageScript = `
local R, L, NK, T = KEYS[1], KEYS[3], KEYS[4], KEYS[5]
local limit = tonumber(ARGV[1])
local desc = ARGV[2] == '1'
local hasCur, cur, q = ARGV[3] == '1', ARGV[4], ARGV[6]
local temp = ARGV[7] == '1'
` + dropMissingQ + `
local total = redis.call('ZCARD', R)
local out = {}
if limit <= 0 or total == 0 then return {total, out} end
local src, check = L, temp
if temp and total <= tonumber(ARGV[8]) then
  local ms = redis.call('ZRANGE', R, 0, -1)
  for i = 1, #ms, 500 do
    local j = math.min(i + 499, #ms)
    local nk = redis.call('HMGET', NK, unpack(ms, i, j))
    local args = {}
    for x = i, j do
      args[#args + 1] = 0
      args[#args + 1] = (nk[x - i + 1] or '') .. '\0' .. ms[x]
    end
    redis.call('ZADD', T, unpack(args))
  end
  src, check = T, false
end
local lo, hi = '-', '+'
if hasCur then
  if desc then hi = '(' .. cur else lo = '(' .. cur end
end
local want = limit + 1
while #out < want do
  local ms
  if desc then
    ms = redis.call('ZREVRANGEBYLEX', src, hi, lo, 'LIMIT', 0, 512)
  else
    ms = redis.call('ZRANGEBYLEX', src, lo, hi, 'LIMIT', 0, 512)
  end
  for _, m in ipairs(ms) do
    local keep = true
    if check then
      local at = string.find(m, '\0', 1, true)
      keep = at ~= nil and redis.call('ZSCORE', R, string.sub(m, at + 1)) ~= false
    end
    if keep then
      out[#out + 1] = m
      if #out == want then break end
    end
  end
  if #ms < 512 then break end
  if desc then hi = '(' .. ms[#ms] else lo = '(' .. ms[#ms] end
end
if src == T then redis.call('DEL', T) end
return {total, out}
`

// smallNameSet: a filtered result of at most this many partners is sorted
// by name in a scratch zset; a larger one is met walking the program's
// whole name index (it holds at least one in 100k/smallNameSet entries).
const smallNameSet = 2000

// filterScript computes the set of partners matching every term (a term
// is a union of index sets: the values of one filter, or one n-gram) and
// stores it, with each partner's sort score, in the zset KEYS[2]. Every
// intersection is a ZINTERSTORE that includes the sort zset (weight 1, the
// sets weight 0), so the running result always carries the sort score and
// no final sort step is needed. ZINTERSTORE walks its smallest input and
// stops at a member's first miss, storing only the survivors; on Redis 7.0
// that costs about a third of a chain of SINTERSTOREs, which store every
// intermediate set (measured: 10.8 ms against 28 ms for a 21k-member
// n-gram). It never materialises a big union: the first step intersects
// the single-set terms with each key of the smallest union term
// separately, (S ∩ (B1 ∪ B2)) = (S ∩ B1) ∪ (S ∩ B2), and each later union
// term is applied to the running result the same way, so each step costs
// about the size of its smallest input. A partner found by two branches
// (a multi-valued filter such as groups) has the same score in both, which
// the union keeps (AGGREGATE MAX). All loops over members run inside
// Redis's native commands.
//
//	KEYS[1] sort zset   KEYS[2] result zset   KEYS[3..5] scratch keys
//	KEYS[6] recently_expired zset   KEYS[7] its members since ARGV[2], as a set
//	KEYS[8] the search hash (ID → text)   KEYS[9…] the terms' keys, in order
//	ARGV[1] number of terms   ARGV[2] recently-expired minimum score ('' = unused)
//	ARGV[3…] each term's number of keys; -n for a short q's union (the last
//	         term, of grams too many to meet a result one by one): its n
//	         keys are a destination, then the sets
//	ARGV[3 + number of terms] that q ('' = none)
//
// The short q's union goes last: stored (SUNIONSTORE, about the sum of its
// sets' sizes) and intersected with the result of the other terms, or, if
// that result is under a third of that sum, each of its members' text is
// checked instead (a HGET and a plain find each).
const filterScript = `
local sortKey, res, cur, ta, tb = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
if ARGV[2] ~= '' then
  local ms = redis.call('ZRANGEBYSCORE', KEYS[6], ARGV[2], '+inf')
  for i = 1, #ms, 1000 do
    redis.call('SADD', KEYS[7], unpack(ms, i, math.min(i + 999, #ms)))
  end
end
local search, q = KEYS[8], ARGV[3 + tonumber(ARGV[1])]
local singles, unions, short = {}, {}, nil
local ki = 9
for t = 1, tonumber(ARGV[1]) do
  local nk = tonumber(ARGV[2 + t])
  if nk < 0 then
    short = {dst = KEYS[ki], keys = {}, size = 0}
    for j = ki + 1, ki - nk - 1 do
      table.insert(short.keys, KEYS[j])
      short.size = short.size + redis.call('SCARD', KEYS[j])
    end
    ki = ki - nk
  else
    local term = {keys = {}, size = 0}
    for j = 1, nk do
      local k = KEYS[ki]
      ki = ki + 1
      table.insert(term.keys, k)
      term.size = term.size + redis.call('SCARD', k)
    end
    if nk == 1 then table.insert(singles, term.keys[1]) else table.insert(unions, term) end
  end
end
table.sort(unions, function(a, b) return a.size < b.size end)
-- zinter stores into dst the members of every key of ks that are in base
-- (the sort zset or a running result), with their score in base.
local function zinter(dst, base, ks)
  local args = {'ZINTERSTORE', dst, #ks + 1, base}
  for _, k in ipairs(ks) do table.insert(args, k) end
  table.insert(args, 'WEIGHTS')
  table.insert(args, 1)
  for _ = 1, #ks do table.insert(args, 0) end
  return redis.call(unpack(args))
end
-- each: the union over the keys of term of zinter(base, fixed + key), into dst.
local function each(dst, base, fixed, term)
  for j, k in ipairs(term.keys) do
    local ks = {}
    for _, f in ipairs(fixed) do table.insert(ks, f) end
    table.insert(ks, k)
    if j == 1 then
      zinter(ta, base, ks)
    else
      zinter(tb, base, ks)
      redis.call('ZUNIONSTORE', ta, 2, ta, tb, 'AGGREGATE', 'MAX')
    end
  end
  if redis.call('EXISTS', ta) == 1 then
    redis.call('RENAME', ta, dst)
  else
    redis.call('DEL', dst)
  end
end
local function storeShort()
  for i = 1, #short.keys, 1000 do
    local chunk = {unpack(short.keys, i, math.min(i + 999, #short.keys))}
    if i == 1 then
      redis.call('SUNIONSTORE', short.dst, unpack(chunk))
    else
      redis.call('SUNIONSTORE', short.dst, short.dst, unpack(chunk))
    end
  end
end
if short and #singles == 0 and #unions == 0 then
  storeShort()
  zinter(res, sortKey, {short.dst})
  short = nil
elseif #unions == 0 then
  zinter(res, sortKey, singles)
else
  each(cur, sortKey, singles, table.remove(unions, 1))
  for _, u in ipairs(unions) do
    if redis.call('ZCARD', cur) == 0 then break end
    each(cur, cur, {}, u)
  end
  if redis.call('EXISTS', cur) == 1 then
    redis.call('RENAME', cur, res)
  else
    redis.call('DEL', res)
  end
end
local n = 0
if short then n = redis.call('ZCARD', res) end
if n > 0 and n * 3 < short.size then
  for _, m in ipairs(redis.call('ZRANGE', res, 0, -1)) do
    local t = redis.call('HGET', search, m)
    if (not t) or (not string.find(t, q, 1, true)) then redis.call('ZREM', res, m) end
  end
elseif n > 0 then
  storeShort()
  redis.call('ZINTERSTORE', res, 2, res, short.dst, 'WEIGHTS', 1, 0)
end
redis.call('DEL', cur, ta, tb, KEYS[7])
return 1
`

// tempTTL bounds the life of a query's temporary keys should the
// transaction that deletes them not finish.
const tempTTL = 30 * time.Second

// PartnerIDs is one page of partner IDs of a list query.
type PartnerIDs struct {
	IDs        []string
	NextCursor *string
	Total      int64
}

// SearchPartnerIDs computes one page of the IDs matching lq, entirely in
// Redis: each filter with several values becomes a union (ZUNIONSTORE into
// a temporary key), the filters and the search n-grams are intersected with
// the sort's zset (ZINTERSTORE, the sort score kept), and a script reads the
// page after the cursor. Everything runs in one MULTI on keys of the
// program's hash tag; the temporary keys (tmp:<random>:<n>) are deleted in
// that same transaction and carry a short TTL besides.
func (q *Queries) SearchPartnerIDs(ctx context.Context, program string, lq PartnerListQuery, limit int, cursor string) (PartnerIDs, error) {
	sortName := lq.Sort
	if sortName == "" {
		sortName = "partner_id"
	}
	var score, after string
	if cursor != "" {
		var err error
		if score, after, err = parsePartnerCursor(cursor, sortKeyOf(sortName, lq.Desc)); err != nil {
			return PartnerIDs{}, err
		}
	}
	layout := q.layout("partners") // before the generation: see Runner.Refresh
	ks := q.keys("partners", program)
	var tokb [8]byte
	_, _ = rand.Read(tokb[:])
	tok := hex.EncodeToString(tokb[:])
	var temps []string
	newTemp := func() string {
		k := ks.Key("tmp", tok, strconv.Itoa(len(temps)))
		temps = append(temps, k)
		return k
	}
	pipe := q.rdb.TxPipeline()
	names := make([]string, 0, len(lq.Filters))
	for n := range lq.Filters {
		names = append(names, n)
	}
	sort.Strings(names)
	now := lq.Now
	if now.IsZero() {
		now = time.Now()
	}
	// The filter script's keys: the sort zset, the result, three scratch
	// sets, the recently-expired zset and its scratch set, then the terms'.
	scratchCur, scratchA, scratchB, expiredSet := newTemp(), newTemp(), newTemp(), newTemp()
	var terms [][]string
	expiredMin := ""
	for _, name := range names {
		var keys []string
		seen := map[string]bool{}
		for _, v := range lq.Filters[name] {
			var k string
			switch {
			case name == "terms_update" && v == projections.TermsUpdateRecentlyExpired:
				k = expiredSet
				expiredMin = strconv.FormatInt(now.Add(-projections.RecentlyExpiredWindow).UnixMilli(), 10)
			case strings.HasPrefix(name, "custom."):
				k = ks.CustomKey(strings.TrimPrefix(name, "custom."), v)
			default:
				k = ks.FilterKey(name, v)
			}
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
		if len(keys) > 0 {
			terms = append(terms, keys)
		}
	}
	verify := ""
	search := "" // a q of 1 or 2 characters: the last term's, a deferred union
	if needle := domain.FoldCase(lq.Q); needle != "" {
		rs := []rune(needle)
		switch {
		case len(rs) <= 2:
			// The grams that begin with q, from the registry (read before
			// the transaction: a partner whose gram is registered later was
			// applied later too), and the set of q itself (on a generation
			// of an older layout, until its rebuild switches in, the set of
			// every partner holding q: complete, but it may keep partners
			// renamed since, so their text is checked). The script meets
			// the union with the other terms last, or checks the text of
			// what they left when that is cheaper (a negative key count).
			// The grams longer than q (q's own set is in the term anyway),
			// from q+"\x00" on: a bare "[-" or "[+" would be read as -inf /
			// +inf by the embedded Redis (miniredis), so q=- matched every
			// partner and q=+ none.
			grams, err := q.rdb.ZRangeByLex(ctx, ks.GramRegistryKey(), &redis.ZRangeBy{Min: "[" + needle + "\x00", Max: "(" + needle + "\xff"}).Result()
			if err != nil {
				return PartnerIDs{}, fmt.Errorf("list partners: gram registry: %w", err)
			}
			term := []string{newTemp(), ks.NGramKey(needle)}
			for _, g := range grams {
				if g != needle {
					term = append(term, ks.NGramKey(g))
				}
			}
			terms = append(terms, term)
			search = needle
			if layout < 3 { // before the gram registry (layout 3): check the text
				verify = needle
			}
		case len(rs) <= 3:
			terms = append(terms, []string{ks.NGramKey(needle)})
		default:
			seen := map[string]bool{}
			for i := 0; i+3 <= len(rs); i++ {
				if g := string(rs[i : i+3]); !seen[g] {
					seen[g] = true
					terms = append(terms, []string{ks.NGramKey(g)})
				}
			}
			verify = needle
		}
	}
	result, temp := ks.SortKey(sortName), false
	if len(terms) > 0 {
		res := newTemp()
		keys := []string{result, res, scratchCur, scratchA, scratchB, ks.RecentlyExpiredKey(), expiredSet}
		args := []any{len(terms), expiredMin}
		keys = append(keys, ks.SearchKey())
		for i, t := range terms {
			if search != "" && i == len(terms)-1 {
				args = append(args, -len(t))
			} else {
				args = append(args, len(t))
			}
			keys = append(keys, t...)
		}
		args = append(args, search)
		pipe.Eval(ctx, filterScript, keys, args...)
		result, temp = res, true
	}
	for _, k := range temps {
		pipe.Expire(ctx, k, tempTTL)
	}
	byName := sortName == "name" && layout >= 6
	if cursor != "" && byName != strings.HasPrefix(score, nameKeyCursor) {
		// A cursor of the other layout's name sort (a rebuild switched
		// layouts since it was issued).
		return PartnerIDs{}, ErrBadCursor
	}
	if byName {
		scratch := newTemp() // written and deleted within the transaction
		return q.nameSortedPage(ctx, pipe, ks, result, scratch, temp, temps, lq.Desc, limit, score, after, verify)
	}
	args := []any{limit, boolArg(lq.Desc), boolArg(cursor != ""), score, after, verify, boolArg(temp)}
	if score == "" {
		args[3] = "0"
	}
	res, err := execPage(ctx, pipe, pipe.Eval(ctx, pageScript, []string{result, ks.SearchKey()}, args...), temps, 3)
	if err != nil {
		return PartnerIDs{}, err
	}
	total, _ := res[0].(int64)
	start, _ := res[1].(int64)
	items, _ := res[2].([]any)
	out := PartnerIDs{IDs: make([]string, 0, len(items)/2), Total: total}
	var lastScore string
	for i := 0; i+1 < len(items); i += 2 {
		id, _ := items[i].(string)
		lastScore, _ = items[i+1].(string)
		out.IDs = append(out.IDs, id)
	}
	if n := len(out.IDs); n > 0 && start+int64(n) < total {
		next := partnerCursor(sortKeyOf(sortName, lq.Desc), normScore(lastScore), out.IDs[n-1])
		out.NextCursor = &next
	}
	return out, nil
}

// nameSortedPage reads one page in name order (namePageScript) in the
// transaction pipe, after the filters (if any) stored result; scratch is
// one of temps, for sorting a small result.
func (q *Queries) nameSortedPage(ctx context.Context, pipe redis.Pipeliner, ks projections.Keyspace, result, scratch string, temp bool,
	temps []string, desc bool, limit int, score, after, verify string) (PartnerIDs, error) {
	entry := ""
	if score != "" {
		entry = strings.TrimPrefix(score, nameKeyCursor) + "\x00" + after
	}
	page := pipe.Eval(ctx, namePageScript, []string{result, ks.SearchKey(), ks.NameLexKey(), ks.NameKeysKey(), scratch},
		limit, boolArg(desc), boolArg(score != ""), entry, "", verify, boolArg(temp), smallNameSet)
	res, err := execPage(ctx, pipe, page, temps, 2)
	if err != nil {
		return PartnerIDs{}, err
	}
	total, _ := res[0].(int64)
	entries, _ := res[1].([]any)
	out := PartnerIDs{IDs: make([]string, 0, min(len(entries), limit)), Total: total}
	last := ""
	for i, e := range entries {
		if i == limit {
			key, id, _ := strings.Cut(last, "\x00")
			next := partnerCursor(sortKeyOf("name", desc), nameKeyCursor+key, id)
			out.NextCursor = &next
			break
		}
		s, _ := e.(string)
		_, id, ok := strings.Cut(s, "\x00")
		if !ok {
			return PartnerIDs{}, fmt.Errorf("list partners: name entry %q", s)
		}
		out.IDs = append(out.IDs, id)
		last = s
	}
	return out, nil
}

// execPage deletes the temporary keys in the transaction pipe, runs it
// and returns the page script's reply, of n elements.
func execPage(ctx context.Context, pipe redis.Pipeliner, page *redis.Cmd, temps []string, n int) ([]any, error) {
	for _, k := range temps {
		pipe.Del(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("list partners: %w", err)
	}
	res, _ := page.Val().([]any)
	if len(res) != n {
		return nil, fmt.Errorf("list partners: unexpected reply %v", page.Val())
	}
	return res, nil
}

func sortKeyOf(name string, desc bool) string {
	if desc {
		return "-" + name
	}
	return name
}

// normScore renders a score reply the way the script compares it.
func normScore(s string) string {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return "0"
	}
	return projections.FormatScore(f)
}

func boolArg(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// SearchPartners pages through the partners matching lq, each document cut
// down to columns (all fields when columns is empty).
func (q *Queries) SearchPartners(ctx context.Context, program string, lq PartnerListQuery, columns []string, limit int, cursor string) (Page[json.RawMessage], error) {
	ids, err := q.SearchPartnerIDs(ctx, program, lq, limit, cursor)
	if err != nil {
		return Page[json.RawMessage]{}, err
	}
	docs, err := q.PartnerDocs(ctx, program, ids.IDs)
	if err != nil {
		return Page[json.RawMessage]{}, err
	}
	page := Page[json.RawMessage]{Items: make([]json.RawMessage, 0, len(docs)), NextCursor: ids.NextCursor, Total: ids.Total}
	for _, d := range docs {
		if len(columns) > 0 {
			if d, err = ProjectColumns(d, columns); err != nil {
				return Page[json.RawMessage]{}, err
			}
		}
		page.Items = append(page.Items, d)
	}
	return page, nil
}

// ExportPartners hands every partner matching lq to emit, page by page of
// up to size documents, in lq's order, each partner once. Pages are read
// one after the other while partners change: one whose sort value moves
// during the export could come twice (before and after the move) or not
// at all (from a later page to an earlier one). So each partner is given
// once (sent remembers whom), and unless the order is the partner ID's,
// which never changes, or no partner changed meanwhile, a last pass in
// that order gives, at the end, those that matched and were skipped. An
// error of emit ends the export.
func (q *Queries) ExportPartners(ctx context.Context, program string, lq PartnerListQuery, size int, emit func([]json.RawMessage) error) error {
	sent := map[string]struct{}{}
	// pass walks the IDs lq matches and gives the documents of those not
	// given yet; the first page always (an empty export is still one).
	pass := func(lq PartnerListQuery, first bool) error {
		for cursor := ""; ; {
			ids, err := q.SearchPartnerIDs(ctx, program, lq, size, cursor)
			if err != nil {
				return err
			}
			var fresh []string
			for _, id := range ids.IDs {
				if _, dup := sent[id]; !dup {
					sent[id] = struct{}{}
					fresh = append(fresh, id)
				}
			}
			docs, err := q.PartnerDocs(ctx, program, fresh)
			if err != nil {
				return err
			}
			if first || len(docs) > 0 {
				if err := emit(docs); err != nil {
					return err
				}
			}
			first = false
			if ids.NextCursor == nil {
				return nil
			}
			cursor = *ids.NextCursor
		}
	}
	// The program's checkpoint moves with every batch of partner events
	// applied: when it did not move, no partner moved, and the last pass
	// (a second search) is not needed.
	applied := func() string {
		v, _ := q.rdb.HGet(ctx, q.keys("partners", program).Key("meta"), "checkpoint").Result()
		return v
	}
	before := applied()
	if err := pass(lq, true); err != nil {
		return err
	}
	if lq.Sort == "" || lq.Sort == "partner_id" || applied() == before {
		return nil
	}
	byID := lq
	byID.Sort, byID.Desc = "", false
	return pass(byID, false)
}

// PartnerDocs reads the documents of ids in one round trip, skipping any
// that vanished meanwhile.
func (q *Queries) PartnerDocs(ctx context.Context, program string, ids []string) ([]json.RawMessage, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	ks := q.keys("partners", program)
	pipe := q.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HGet(ctx, ks.Key("partner", id), "doc")
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("list partners: %w", err)
	}
	out := make([]json.RawMessage, 0, len(ids))
	for _, c := range cmds {
		if c.Err() == nil {
			out = append(out, json.RawMessage(c.Val()))
		}
	}
	return out, nil
}

// PartnerColumns are the fields of a partner document that `columns` may name.
var PartnerColumns = func() []string {
	var out []string
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if f.Anonymous {
				walk(f.Type)
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name != "" && name != "-" {
				out = append(out, name)
			}
		}
	}
	walk(reflect.TypeOf(projections.PartnerView{}))
	return out
}()

// ProjectColumns keeps the named fields of a partner document, in the
// order given (a field the document omits is null); partner_id always stays.
func ProjectColumns(doc json.RawMessage, columns []string) (json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(doc, &m); err != nil {
		return nil, fmt.Errorf("partner document: %w", err)
	}
	var b bytes.Buffer
	b.WriteByte('{')
	written := map[string]bool{}
	write := func(c string) {
		if written[c] {
			return
		}
		written[c] = true
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(c)
		b.Write(k)
		b.WriteByte(':')
		if v, ok := m[c]; ok {
			b.Write(v)
		} else {
			b.WriteString("null")
		}
	}
	write("partner_id")
	for _, c := range columns {
		write(c)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// CSVRecord renders the named fields of a partner document as CSV cells:
// strings as they are, numbers and booleans as JSON writes them, null as
// empty, lists joined with ';' (list items that are objects as JSON), and
// objects as JSON.
func CSVRecord(doc json.RawMessage, columns []string) ([]string, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(doc, &m); err != nil {
		return nil, fmt.Errorf("partner document: %w", err)
	}
	rec := make([]string, len(columns))
	for i, c := range columns {
		rec[i] = csvCell(m[c])
	}
	return rec, nil
}

// listItemEscaper escapes a list item of a CSV cell, whose items are
// joined with ';': a ';' of the item is "\;" and a backslash "\\", which
// the import reads back (so "https://x.example/a;b" stays one item).
var listItemEscaper = strings.NewReplacer(`\`, `\\`, `;`, `\;`)

func csvCell(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	switch raw[0] {
	case '"':
		var s string
		_ = json.Unmarshal(raw, &s)
		return s
	case '[':
		var items []json.RawMessage
		_ = json.Unmarshal(raw, &items)
		parts := make([]string, len(items))
		for i, it := range items {
			parts[i] = listItemEscaper.Replace(csvCell(it))
		}
		return strings.Join(parts, ";")
	case '{':
		var b bytes.Buffer
		if json.Compact(&b, raw) == nil {
			return b.String()
		}
	}
	return string(raw)
}

// ValidSearch reports whether q can be searched for: valid UTF-8 without
// control characters (the searchable text separates fields with '\n').
func ValidSearch(q string) bool {
	if !utf8.ValidString(q) {
		return false
	}
	for _, r := range q {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}
