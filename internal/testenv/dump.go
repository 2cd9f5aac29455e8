package testenv

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// DumpGeneration reads every key of one generation of a projection
// ("pd:<name>:g<gen>:…") with its content in a canonical form, keyed by
// "<type> <key without the generation prefix>", so that two generations,
// or a live one and a rebuild in another database, compare with ==.
// Hashes render as sorted "field=value" lines joined by "\x00", sets as
// sorted members, sorted sets as sorted "member=score". Keys that are not
// content are left out: "}:meta" (the checkpoint, a batch boundary),
// "}:epoch" (the segments projection's cache tokens, random per writer)
// and "logpos" (how far a log-ordered projection read the log).
func DumpGeneration(ctx context.Context, rdb redis.UniversalClient, name string, gen int64) (map[string]string, error) {
	prefix := "pd:" + name + ":g" + strconv.FormatInt(gen, 10) + ":"
	var keys []string
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		if strings.HasSuffix(k, "}:meta") || strings.HasSuffix(k, "}:epoch") || k == prefix+"logpos" {
			continue
		}
		typ, err := rdb.Type(ctx, k).Result()
		if err != nil {
			return nil, err
		}
		var v string
		switch typ {
		case "string":
			v, err = rdb.Get(ctx, k).Result()
		case "hash":
			var m map[string]string
			m, err = rdb.HGetAll(ctx, k).Result()
			parts := make([]string, 0, len(m))
			for f, fv := range m {
				parts = append(parts, f+"="+fv)
			}
			sort.Strings(parts)
			v = strings.Join(parts, "\x00")
		case "set":
			var ms []string
			ms, err = rdb.SMembers(ctx, k).Result()
			sort.Strings(ms)
			v = strings.Join(ms, "\x00")
		case "zset":
			var zs []redis.Z
			zs, err = rdb.ZRangeWithScores(ctx, k, 0, -1).Result()
			parts := make([]string, len(zs))
			for i, z := range zs {
				parts[i] = fmt.Sprintf("%v=%s", z.Member, strconv.FormatFloat(z.Score, 'g', -1, 64))
			}
			sort.Strings(parts)
			v = strings.Join(parts, "\x00")
		case "none":
			continue // deleted between SCAN and TYPE
		default:
			v = "type " + typ
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", k, err)
		}
		out[typ+" "+strings.TrimPrefix(k, prefix)] = v
	}
	return out, nil
}
