package faults

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kafka-cnosdb/telegraf-execd/internal/kafkatest"
)

// Message kinds of the malformed flood.
const (
	kindValid     = iota
	kindInvalid   // not JSON: skipped and logged
	kindBigString // a 10 MB string field (dropped, as strings are) besides the numbers: stored
	kindWide      // 5000 numeric fields: stored
	kindDeep      // 10,000 levels of nesting: encoding/json's limit, so either way is right
	kindOversize  // longer than max_message_len: skipped and logged
)

const (
	bigStringLen  = 10 << 20
	oversizeLen   = 12 << 20
	maxMessageLen = 11 << 20
	deepLevels    = 10000
	wideFields    = 5000
)

// floodPlan decides each message's kind: every tenth is invalid, and a
// few of the heavy kinds are spread over the run.
type floodPlan struct {
	total int
	heavy map[int]int // n -> kind
}

func newFloodPlan(total, eachHeavy int) floodPlan {
	plan := floodPlan{total: total, heavy: map[int]int{}}
	kinds := []int{kindBigString, kindWide, kindDeep, kindOversize}
	step := total / (eachHeavy*len(kinds) + 1)
	n := step
	for i := 0; i < eachHeavy; i++ {
		for _, k := range kinds {
			if n%10 == 9 {
				n++
			}
			plan.heavy[n] = k
			n += step
		}
	}
	return plan
}

func (f floodPlan) kind(n int) int {
	if k, ok := f.heavy[n]; ok {
		return k
	}
	if n%10 == 9 {
		return kindInvalid
	}
	return kindValid
}

var invalidForms = []string{
	`{"n":%d,"pressure":`,
	`not json %d`,
	`{"n":%d,"pressure":tru}`,
	`[{"n":%d},`,
	`{"n":%d,"pressure":1.5}}`,
}

func (f floodPlan) message(n int) []byte {
	switch f.kind(n) {
	case kindInvalid:
		return fmt.Appendf(nil, invalidForms[(n/10)%len(invalidForms)], n)
	case kindBigString:
		var b bytes.Buffer
		fmt.Fprintf(&b, `{"n":%d,"pressure":1.5,"blob":"`, n)
		b.Write(bytes.Repeat([]byte("x"), bigStringLen))
		b.WriteString(`"}`)
		return b.Bytes()
	case kindOversize:
		var b bytes.Buffer
		fmt.Fprintf(&b, `{"n":%d,"pressure":1.5,"blob":"`, n)
		b.Write(bytes.Repeat([]byte("y"), oversizeLen))
		b.WriteString(`"}`)
		return b.Bytes()
	case kindWide:
		var b bytes.Buffer
		fmt.Fprintf(&b, `{"n":%d`, n)
		for i := 0; i < wideFields; i++ {
			fmt.Fprintf(&b, `,"w%d":%d.5`, i, i)
		}
		b.WriteString("}")
		return b.Bytes()
	case kindDeep:
		// The outer object is level 1.
		var b bytes.Buffer
		fmt.Fprintf(&b, `{"n":%d,"pressure":1.5,"d":`, n)
		b.WriteString(strings.Repeat(`{"d":`, deepLevels-2))
		b.WriteString("1")
		b.WriteString(strings.Repeat("}", deepLevels-1))
		return b.Bytes()
	}
	return message(n)
}

// TestFaultMalformedFlood: a flood where every tenth message is not JSON,
// with 10 MB strings, messages over max_message_len, 5000-field messages
// and 10,000-level nesting among them. The input must not crash, must log
// its errors rate-limited, must store every valid message, and its memory
// must stay bounded.
func TestFaultMalformedFlood(t *testing.T) {
	t.Parallel()
	total, eachHeavy := pick(1000, 10000), pick(1, 4)
	forEachTelegraf(t, false, func(t *testing.T, tg stockTelegraf) {
		plan := newFloodPlan(total, eachHeavy)
		p := newPipeline(t, "malformed-json-flood", tg, setup{
			createTopic: func(t *testing.T) string {
				return newLargeTopic(t, kafkatest.Brokers(t), 1)
			},
			input: fmt.Sprintf("  max_message_len = %d\n", maxMessageLen),
		})
		tgp := p.start()
		inputPID := tgp.child(t, "telegraf-kafka-json")
		outputPID := tgp.child(t, "telegraf-cnosdb")
		began := time.Now()
		produce(t, p.brokers, p.topic, 0, total, 0, plan.message)
		counts := map[int]int{}
		var optional []int
		for n := 0; n < total; n++ {
			k := plan.kind(n)
			counts[k]++
			switch k {
			case kindValid, kindBigString, kindWide:
				p.sent = append(p.sent, n)
			case kindDeep:
				optional = append(optional, n)
			}
		}
		p.optional = optional
		p.waitStored(30*time.Second, 4*time.Minute)
		// The skipped messages come last in no particular order; give the
		// input time to get past all of them before its memory is read.
		time.Sleep(2 * time.Second)
		elapsed := time.Since(began)
		inHWM, inRSS, _ := memoryKiB(inputPID)
		outHWM, outRSS, _ := memoryKiB(outputPID)
		if now := tgp.children()["telegraf-kafka-json"]; now != inputPID {
			t.Errorf("the input child changed from pid %d to %d: it crashed", inputPID, now)
		}
		stored := p.storedCounts()
		deepStored := 0
		for _, n := range optional {
			if stored[n] > 0 {
				deepStored++
			}
		}
		notes := []string{
			fmt.Sprintf("%d messages: %d invalid JSON, %d with 10 MB strings, %d over max_message_len (%d MB), %d with %d fields, %d with %d levels of nesting (%d stored)",
				total, counts[kindInvalid], counts[kindBigString], counts[kindOversize], oversizeLen>>20, counts[kindWide], wideFields, counts[kindDeep], deepLevels, deepStored),
			fmt.Sprintf("input child memory: peak (VmHWM) %d MiB, now %d MiB; output child: peak %d MiB, now %d MiB", inHWM>>10, inRSS>>10, outHWM>>10, outRSS>>10),
		}
		r := p.finish(expectation{notes: notes})
		if r.Outcome != "pass" {
			return
		}
		if inHWM > 500<<10 {
			t.Errorf("input child peak memory %d MiB, want at most 500 MiB", inHWM>>10)
		}
		log := p.log.String()
		logged := strings.Count(log, "skipping message at topic")
		// At most 10 per 10 s, plus one that reports what was held back.
		if limit := 11 * (int(elapsed/(10*time.Second)) + 2); logged == 0 || logged > limit {
			t.Errorf("%d skipped messages logged in %v: want some, at most %d", logged, elapsed.Round(time.Second), limit)
		}
		var consumed, lines, skipped int
		i := strings.LastIndex(log, "stopped: ")
		if i < 0 || !strings.Contains(log[i:], "messages consumed") {
			t.Fatalf("no summary line of the input in the log:\n%s", tail(log, 40))
		}
		if _, err := fmt.Sscanf(log[i:], "stopped: %d messages consumed, %d lines written, %d bad messages skipped", &consumed, &lines, &skipped); err != nil {
			t.Fatalf("input summary: %v in %q", err, tail(log[i:], 3))
		}
		wantSkipped := counts[kindInvalid] + counts[kindOversize] + counts[kindDeep] - deepStored
		if skipped != wantSkipped {
			t.Errorf("input skipped %d messages, want %d", skipped, wantSkipped)
		}
		t.Logf("input: %d consumed, %d skipped, %d skip lines logged in %v", consumed, skipped, logged, elapsed.Round(time.Second))
	})
}
