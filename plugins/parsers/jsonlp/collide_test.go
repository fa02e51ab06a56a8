package jsonlp

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/tidwall/gjson"
)

// Telegraf's flattener walks Go maps, so when two paths flatten to the same
// key ({"a_b":1,"a":{"b":2}}) the winner is random. We promise the last one
// in document order. To compare against the oracle anyway, the test rewrites
// such a document into flat objects holding only the winners, in order, and
// hands that to Telegraf: with unique flat keys its result is deterministic.

type flatLeaf struct {
	key  string
	val  any // json.Number, string, bool
	dead bool
}

// hasCollisions reports whether any object in the (already queried)
// document flattens two non-null values to one key. It works on
// encoding/json's map, i.e. after duplicate keys were resolved.
func hasCollisions(doc []byte) bool {
	var v any
	if json.Unmarshal(doc, &v) != nil {
		return false
	}
	objs := []any{v}
	if arr, ok := v.([]any); ok {
		objs = arr
	}
	for _, o := range objs {
		counts := map[string]int{}
		var walk func(prefix string, v any)
		walk = func(prefix string, v any) {
			join := func(k string) string {
				if prefix == "" {
					return k
				}
				return prefix + "_" + k
			}
			switch t := v.(type) {
			case map[string]any:
				for k, x := range t {
					walk(join(k), x)
				}
			case []any:
				for i, x := range t {
					walk(join(strconv.Itoa(i)), x)
				}
			case nil:
			default:
				counts[prefix]++
			}
		}
		if m, ok := o.(map[string]any); ok {
			walk("", m)
		}
		for _, n := range counts {
			if n > 1 {
				return true
			}
		}
	}
	return false
}

// applyQuery mirrors the parser's json_query step for the rewrite.
func applyQuery(doc []byte, query string) ([]byte, bool) {
	if query == "" {
		return doc, true
	}
	res := gjson.GetBytes(doc, query)
	if !res.IsArray() && !res.IsObject() {
		return nil, false
	}
	return []byte(res.Raw), true
}

// rewriteLastWins returns doc (after the query) as flat objects keeping the
// last value of every flattened key in document order.
func rewriteLastWins(doc []byte) ([]byte, error) {
	doc = bytes.TrimPrefix(bytes.TrimSpace(doc), utf8BOM)
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	switch tok {
	case json.Delim('{'):
		if err := rewriteObject(dec, &out); err != nil {
			return nil, err
		}
	case json.Delim('['):
		out.WriteByte('[')
		for i := 0; dec.More(); i++ {
			if t, err := dec.Token(); err != nil || t != json.Delim('{') {
				return nil, errors.New("not an array of objects")
			}
			if i > 0 {
				out.WriteByte(',')
			}
			if err := rewriteObject(dec, &out); err != nil {
				return nil, err
			}
		}
		out.WriteByte(']')
	default:
		return nil, errors.New("not an object")
	}
	return out.Bytes(), nil
}

// rewriteObject writes one object (its '{' already read) flattened.
func rewriteObject(dec *json.Decoder, out *bytes.Buffer) error {
	var leaves []flatLeaf
	if err := walkObject(dec, "", &leaves); err != nil {
		return err
	}
	last := map[string]int{}
	for i, l := range leaves {
		if l.dead {
			continue
		}
		if j, ok := last[l.key]; ok {
			leaves[j].dead = true
		}
		last[l.key] = i
	}
	out.WriteByte('{')
	first := true
	for _, l := range leaves {
		if l.dead {
			continue
		}
		if !first {
			out.WriteByte(',')
		}
		first = false
		k, _ := json.Marshal(l.key)
		v, _ := json.Marshal(l.val)
		out.Write(k)
		out.WriteByte(':')
		out.Write(v)
	}
	out.WriteByte('}')
	return nil
}

func join(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "_" + k
}

func walkObject(dec *json.Decoder, prefix string, leaves *[]flatLeaf) error {
	type span struct{ start, end int }
	seen := map[string]span{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		key := t.(string)
		if s, ok := seen[key]; ok { // encoding/json keeps the last duplicate
			for i := s.start; i < s.end; i++ {
				(*leaves)[i].dead = true
			}
		}
		start := len(*leaves)
		if err := walkValue(dec, join(prefix, key), leaves); err != nil {
			return err
		}
		seen[key] = span{start, len(*leaves)}
	}
	_, err := dec.Token() // '}'
	return err
}

func walkValue(dec *json.Decoder, key string, leaves *[]flatLeaf) error {
	t, err := dec.Token()
	if err != nil {
		return err
	}
	switch t {
	case json.Delim('{'):
		return walkObject(dec, key, leaves)
	case json.Delim('['):
		for i := 0; dec.More(); i++ {
			if err := walkValue(dec, join(key, strconv.Itoa(i)), leaves); err != nil {
				return err
			}
		}
		_, err := dec.Token()
		return err
	case nil:
		return nil
	}
	*leaves = append(*leaves, flatLeaf{key: key, val: t})
	return nil
}
