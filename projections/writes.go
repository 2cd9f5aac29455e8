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

// SRem removes set members.
func (w *Writes) SRem(key string, members ...any) { w.op("SREM", key, members...) }

// ZAdd adds one sorted-set member with its score.
func (w *Writes) ZAdd(key string, score float64, member string) {
	w.op("ZADD", key, strconv.FormatFloat(score, 'g', -1, 64), member)
}

// ZRem removes sorted-set members.
func (w *Writes) ZRem(key string, members ...any) { w.op("ZREM", key, members...) }

// applyScript checks every stream's guard (compare-and-set against what the
// runner read), then sets the guards and runs the planned writes.
//
//	KEYS[1]  guard hash (stream → last applied stream version + 1)
//	KEYS[2…] keys of the writes
//	ARGV     nGuards, {stream, expected ('' = absent), new}…, nOps, {cmd, keyIndex, nArgs, args…}…
//
// It returns 1 when applied, 0 when a guard moved (another consumer applied
// some of these events meanwhile; the runner re-reads and retries).
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
i = 2
for g = 1, n do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i+2])
  i = i + 3
end
local nops = tonumber(ARGV[i])
i = i + 1
for o = 1, nops do
  local cmd = ARGV[i]
  local key = KEYS[tonumber(ARGV[i+1])]
  local na = tonumber(ARGV[i+2])
  i = i + 3
  if na == 0 then
    redis.call(cmd, key)
  else
    redis.call(cmd, key, unpack(ARGV, i, i + na - 1))
  end
  i = i + na
end
return 1
`
