package projections

import (
	"strconv"
)

// Writes collects the Redis writes a projection plans for one hash tag
// (one program). The runner applies them, the version guards and the
// checkpoint in one atomic Lua step. Every write names exactly one key, and
// every key is passed to Lua in KEYS, so the step is valid on Redis Cluster
// (all keys of one tag share a slot). Values are always data (ARGV), never
// part of the script.
type Writes struct {
	keys   []string
	keyIdx map[string]int
	args   []any
	nops   int
	checks []any
	// olderLayout: the generation predates the gram registry, so its
	// n-gram sets may exist without a registry entry: GramAdd registers
	// the gram whenever it adds members, not only to an empty set.
	olderLayout bool
}

func (w *Writes) key(k string) int {
	if w.keyIdx == nil {
		w.keyIdx = map[string]int{}
	}
	if i, ok := w.keyIdx[k]; ok {
		return i
	}
	w.keys = append(w.keys, k)
	// KEYS[1] is the guard hash; op keys start at KEYS[2].
	i := len(w.keys) + 1
	w.keyIdx[k] = i
	return i
}

func (w *Writes) op(cmd, key string, args ...any) {
	w.args = append(w.args, cmd, w.key(key), len(args))
	w.args = append(w.args, args...)
	w.nops++
}

// Check makes the whole step conditional: it applies only if hash field
// key.field holds expected ("" = absent) when it runs; otherwise nothing is
// written and the runner re-reads and re-plans the batch. It lets a
// projection whose writes depend on state of other streams (segment
// conditions, partner facts) detect that another consumer changed that
// state after it was read.
func (w *Writes) Check(key, field, expected string) {
	w.checks = append(w.checks, w.key(key), field, expected)
}

// CheckValue is Check on a string key: it must hold expected ("" = absent).
func (w *Writes) CheckValue(key, expected string) {
	w.checks = append(w.checks, w.key(key), "", expected)
}

// HIncrBy increments a hash field.
func (w *Writes) HIncrBy(key, field string, by int64) { w.op("HINCRBY", key, field, by) }

// Announce moves member into (enter) or out of the set key and, only if
// the set changed, increments the counter seqKey and appends
// "<seq>|enter|<payload>" (or leave) to the list outboxKey, all in the same
// atomic step. The segments projection uses it for its membership outbox.
func (w *Writes) Announce(key, seqKey, outboxKey, member string, enter bool, payload string) {
	action := "leave"
	if enter {
		action = "enter"
	}
	w.op("PD_ANNOUNCE", key, w.key(seqKey), w.key(outboxKey), member, action, payload)
}

// reset empties w and keeps its memory, for planning the next batch.
func (w *Writes) reset() {
	w.keys = w.keys[:0]
	clear(w.keyIdx)
	clear(w.args) // drop the references the old args hold
	w.args = w.args[:0]
	w.nops = 0
	w.checks = w.checks[:0]
}

// Len is the number of planned writes.
func (w *Writes) Len() int { return w.nops }

// HSet sets hash fields: field, value, field, value, …
func (w *Writes) HSet(key string, fieldValues ...any) { w.op("HSET", key, fieldValues...) }

// HDel deletes hash fields.
func (w *Writes) HDel(key string, fields ...any) { w.op("HDEL", key, fields...) }

// Set sets a string key.
func (w *Writes) Set(key string, value any) { w.op("SET", key, value) }

// Del deletes a key.
func (w *Writes) Del(key string) { w.op("DEL", key) }

// SAdd adds set members.
func (w *Writes) SAdd(key string, members ...any) { w.op("SADD", key, members...) }

// GramAdd adds members to the n-gram set key and, when the set was empty
// before, gram to the registry zset (score 0), in the same atomic step.
func (w *Writes) GramAdd(key, registry, gram string, members ...any) {
	if w.olderLayout {
		w.gramOp("PD_GRAMREG", key, registry, gram, members)
		return
	}
	w.gramOp("PD_GRAMADD", key, registry, gram, members)
}

// gramOp appends a PD_GRAM* op without copying members twice (a rebuild's
// n-gram sets gain thousands of members per batch).
func (w *Writes) gramOp(cmd, key, registry, gram string, members []any) {
	ki, ri := w.key(key), w.key(registry)
	w.args = append(w.args, cmd, ki, len(members)+2, ri, gram)
	w.args = append(w.args, members...)
	w.nops++
}

// GramRem removes members from the n-gram set key and, when that empties
// it, gram from the registry.
func (w *Writes) GramRem(key, registry, gram string, members ...any) {
	w.gramOp("PD_GRAMREM", key, registry, gram, members)
}

// SRem removes set members.
func (w *Writes) SRem(key string, members ...any) { w.op("SREM", key, members...) }

// ZAdd adds one sorted-set member with its score.
func (w *Writes) ZAdd(key string, score float64, member string) {
	w.op("ZADD", key, strconv.FormatFloat(score, 'g', -1, 64), member)
}

// ZRem removes sorted-set members.
func (w *Writes) ZRem(key string, members ...any) { w.op("ZREM", key, members...) }

// Publish publishes message on a pub/sub channel from inside the atomic
// step: only when the batch is applied, never for a skipped redelivery.
// The channel is passed as a key so that it carries the hash tag.
func (w *Writes) Publish(channel, message string) { w.op("PUBLISH", channel, message) }

// XAdd appends an entry with an ID Redis assigns ("*") to a stream capped
// at about maxLen entries (0: no cap). IDs grow in the order batches are
// applied, whatever the log positions of their events.
func (w *Writes) XAdd(stream string, maxLen int64, fieldValues ...any) {
	args := []any{}
	if maxLen > 0 {
		args = append(args, "MAXLEN", "~", maxLen)
	}
	args = append(args, "*")
	w.op("XADD", stream, append(args, fieldValues...)...)
}

// applyScript checks every stream's guard (compare-and-set against what the
// runner read), then sets the guards and runs the planned writes.
//
//	KEYS[1]  guard hash (stream → last applied stream version + 1)
//	KEYS[2…] keys of the writes
//	ARGV     nGuards, {stream, expected ('' = absent), new}…,
//	         nChecks, {keyIndex, field ('' = a string key), expected ('' = absent)}…,
//	         nOps, {cmd, keyIndex, nArgs, args…}…
//
// It returns 1 when applied, 0 when a guard or a check moved (another
// consumer applied some of these events, or changed what they were
// planned against, meanwhile; the runner re-reads and retries).
// PD_ANNOUNCE, PD_GRAMADD (PD_GRAMREG on an older layout) and PD_GRAMREM
// are composite ops (see Writes.Announce, Writes.GramAdd, Writes.GramRem).
// PD_GRAMADD asks EXISTS before its SADD, not SCARD after it: both are
// O(1) in Redis, but the embedded Redis (miniredis) sorts a set's members
// for SCARD, which made the default mode's projection slow down with every
// partner (430 partner creations/s at 20k partners).
const applyScript = `
local n = tonumber(ARGV[1])
local i = 2
for g = 1, n do
  local cur = redis.call('HGET', KEYS[1], ARGV[i])
  local exp = ARGV[i+1]
  if cur == false then
    if exp ~= '' then return 0 end
  elseif cur ~= exp then
    return 0
  end
  i = i + 3
end
local nc = tonumber(ARGV[i])
i = i + 1
for c = 1, nc do
  local cur
  if ARGV[i+1] == '' then
    cur = redis.call('GET', KEYS[tonumber(ARGV[i])])
  else
    cur = redis.call('HGET', KEYS[tonumber(ARGV[i])], ARGV[i+1])
  end
  if cur == false then cur = '' end
  if cur ~= ARGV[i+2] then return 0 end
  i = i + 3
end
local opsAt = i
i = 2
for g = 1, n do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i+2])
  i = i + 3
end
i = opsAt
local nops = tonumber(ARGV[i])
i = i + 1
for o = 1, nops do
  local cmd = ARGV[i]
  local key = KEYS[tonumber(ARGV[i+1])]
  local na = tonumber(ARGV[i+2])
  i = i + 3
  if cmd == 'PD_ANNOUNCE' then
    local changed
    if ARGV[i+3] == 'enter' then
      changed = redis.call('SADD', key, ARGV[i+2])
    else
      changed = redis.call('SREM', key, ARGV[i+2])
    end
    if changed == 1 then
      local seq = redis.call('INCR', KEYS[tonumber(ARGV[i])])
      redis.call('RPUSH', KEYS[tonumber(ARGV[i+1])], seq .. '|' .. ARGV[i+3] .. '|' .. ARGV[i+4])
    end
  elseif cmd == 'PD_GRAMADD' or cmd == 'PD_GRAMREG' then
    local fresh = cmd == 'PD_GRAMREG' or redis.call('EXISTS', key) == 0
    local added = redis.call('SADD', key, unpack(ARGV, i + 2, i + na - 1))
    if added > 0 and fresh then
      redis.call('ZADD', KEYS[tonumber(ARGV[i])], 0, ARGV[i+1])
    end
  elseif cmd == 'PD_GRAMREM' then
    local removed = redis.call('SREM', key, unpack(ARGV, i + 2, i + na - 1))
    if removed > 0 and redis.call('EXISTS', key) == 0 then
      redis.call('ZREM', KEYS[tonumber(ARGV[i])], ARGV[i+1])
    end
  elseif na == 0 then
    redis.call(cmd, key)
  else
    redis.call(cmd, key, unpack(ARGV, i, i + na - 1))
  end
  i = i + na
end
return 1
`
