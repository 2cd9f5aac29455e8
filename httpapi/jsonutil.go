package httpapi

import (
	"bytes"
	"encoding/json"
)

// mergeJSON renders v (a JSON object) with extra string fields added.
func mergeJSON(v any, extra map[string]string) ([]byte, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	body = bytes.TrimSpace(body)
	if len(body) < 2 || body[0] != '{' {
		return body, nil
	}
	var buf bytes.Buffer
	buf.Write(body[:len(body)-1])
	first := len(body) == 2
	for _, k := range []string{"position", "consistency_token"} {
		val, ok := extra[k]
		if !ok {
			continue
		}
		if !first {
			buf.WriteByte(',')
		}
		first = false
		kb, _ := json.Marshal(k)
		vb, _ := json.Marshal(val)
		buf.Write(kb)
		buf.WriteByte(':')
		buf.Write(vb)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}
