package faults

import (
	"fmt"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kafka-cnosdb/telegraf-execd/internal/proctest"
)

// rate is the producer's pace in the mid-stream scenarios: steady, well
// below what the pipeline takes, so that a fault always lands mid-stream.
const rate = 300

// after runs f once d has passed since the call, in the background.
func after(d time.Duration, f func()) <-chan struct{} {
	done := make(chan struct{})
	time.AfterFunc(d, func() {
		defer close(done)
		f()
	})
	return done
}

// TestFaultCnosDBDown: the CnosDB test server goes down (connections
// dropped, new ones refused) while messages flow, and comes back. The
// output holds what it has read (up to max_buffered_bytes), Telegraf's
// buffer holds some more, and the input stops consuming once
// max_undelivered_messages are unacknowledged; nothing may be lost.
func TestFaultCnosDBDown(t *testing.T) {
	t.Parallel()
	down := pick(10*time.Second, 60*time.Second)
	forEachCnosDB(t, true, func(t *testing.T, tg stockTelegraf, real string) {
		p := newPipeline(t, fmt.Sprintf("cnosdb-down-%s", down), tg, setup{real: real})
		p.start()
		total := int((2*time.Second + down + 3*time.Second).Seconds() * rate)
		sending := p.sendAsync(0, total, rate)
		time.Sleep(2 * time.Second)
		recovery := p.outage(down)
		<-sending
		p.waitStored(30*time.Second, 3*time.Minute)
		p.finish(expectation{notes: []string{
			fmt.Sprintf("%s, killed (SIGKILL) and started again", p.backendName()),
			recoveryNote(recovery),
			fmt.Sprintf("%d messages/s; without the delivery loop (16c732a) a 1 min outage overflowed Telegraf's default metric_buffer_limit (10000) and lost the oldest metrics", rate),
		}})
	})
}

// TestFaultCnosDBDownOverflow: CnosDB down longer than Telegraf's buffer
// holds: a fast input fills Telegraf's buffer (metric_buffer_limit) and
// the output's (max_buffered_bytes), both set small here so that a short
// outage overflows them. Telegraf drops the oldest metrics ("Metric buffer
// overflow"); the output sees checkpoints come after fewer lines than
// their input wrote, and the input replays from its acknowledged offsets.
func TestFaultCnosDBDownOverflow(t *testing.T) {
	t.Parallel()
	down := pick(10*time.Second, 60*time.Second)
	forEachCnosDB(t, false, func(t *testing.T, tg stockTelegraf, real string) {
		p := newPipeline(t, fmt.Sprintf("cnosdb-down-%s-overflow", down), tg, setup{
			real:        real,
			outputExecd: `  metric_buffer_limit = 1000`,
			output:      "  batch_size_bytes = \"16KiB\"\n  max_buffered_bytes = \"64KiB\"\n",
		})
		p.start()
		total := int((2*time.Second + down + 3*time.Second).Seconds() * 2 * rate)
		sending := p.sendAsync(0, total, 2*rate)
		time.Sleep(2 * time.Second)
		recovery := p.outage(down)
		<-sending
		p.waitStored(20*time.Second, 3*time.Minute)
		p.finish(expectation{
			notes: []string{
				p.backendName(),
				recoveryNote(recovery),
				fmt.Sprintf("%d messages/s into metric_buffer_limit = 1000 and a 64 KiB output buffer: both full within seconds; without the delivery loop (16c732a) Telegraf dropped the oldest metrics, whose offsets were committed", 2*rate),
			},
		})
	})
}

// TestFaultCnosDBOverloadAndLatency: CnosDB answers 422 020005 (Memory
// Exhausted Retry Later) to a run of writes, then answers slower than the
// output's timeout for a while. Both are retried; a write that timed out
// was stored anyway, so its retry lands on the same rows (redelivered,
// not duplicated).
func TestFaultCnosDBOverloadAndLatency(t *testing.T) {
	t.Parallel()
	overloads := pick(6, 30)
	slowFor := pick(6*time.Second, 30*time.Second)
	forEachTelegraf(t, true, func(t *testing.T, tg stockTelegraf) {
		p := newPipeline(t, "cnosdb-overload-then-latency", tg, setup{
			output: "  timeout = \"1s\"\n  retry_max_interval = \"2s\"\n",
		})
		p.start()
		sending := p.sendAsync(0, rate*6, rate/2)
		time.Sleep(2 * time.Second)
		p.fake.Overload(overloads)
		for deadline := time.Now().Add(2 * time.Minute); p.fake.Stats().Count(422, "020005") < overloads; {
			if time.Now().After(deadline) {
				t.Fatalf("only %d of %d overload answers given", p.fake.Stats().Count(422, "020005"), overloads)
			}
			time.Sleep(100 * time.Millisecond)
		}
		p.fake.SetLatency(1500 * time.Millisecond)
		time.Sleep(slowFor)
		p.fake.SetLatency(0)
		<-sending
		p.waitStored(30*time.Second, 3*time.Minute)
		st := p.fake.Stats()
		p.finish(expectation{notes: []string{
			fmt.Sprintf("%d overload answers (422 020005); %d write requests in all", st.Count(422, "020005"), st.WriteRequests),
		}})
	})
}

// TestFaultBadAndTaglessLines230: on CnosDB 2.3.0, a stream where some
// messages become lines CnosDB refuses (a string where the table has a
// float: 422 020004) and some have no tag at all (2.3.0 refuses tagless
// lines with a bare 500). The output isolates the refused lines, logs and
// counts them, and writes every good line of the same batches. On a real
// CnosDB (2.4.3: tagless lines are fine there) only the type conflicts
// are sent among the good lines.
func TestFaultBadAndTaglessLines230(t *testing.T) {
	t.Parallel()
	forEachCnosDB(t, true, func(t *testing.T, tg stockTelegraf, real string) {
		// A real 2.4 takes tagless lines: only the type conflicts are bad
		// there. A real 2.3 refuses them, like the test server.
		tagged := real != "" && !strings.HasPrefix(real, "2.3.")
		name := "bad-and-tagless-lines-2.3.0"
		if tagged {
			name = "bad-lines"
		}
		p := newPipeline(t, name, tg, setup{
			real:  real,
			agent: "  omit_hostname = true",
			// A string pressure stays a string field: a type conflict.
			input:  "  json_string_fields = [\"pressure\"]\n",
			output: "  log_level = \"info\"\n",
		})
		p.start()
		// Good lines first, so that the table's schema exists.
		p.send(0, 200, 0)
		if !p.waitStored(30*time.Second, time.Minute) {
			t.Fatal("the good lines before the bad ones were not stored")
		}
		const mixed = 2000
		bad, tagless := 0, 0
		produce(t, p.brokers, p.topic, 200, 200+mixed, 0, func(n int) []byte {
			switch {
			case n%10 == 3:
				return fmt.Appendf(nil, `{"n":%d,"pressure":"high","temperature":1.5}`, n)
			case n%10 == 7 && !tagged:
				return fmt.Appendf(nil, `{"m":%d,"pressure":2.5}`, n)
			}
			return message(n)
		})
		for n := 200; n < 200+mixed; n++ {
			switch {
			case n%10 == 3:
				bad++
			case n%10 == 7 && !tagged:
				tagless++
			default:
				p.sent = append(p.sent, n)
			}
		}
		p.waitStored(30*time.Second, 3*time.Minute)
		// Let the last refused lines be isolated before stopping.
		time.Sleep(3 * time.Second)
		r := p.finish(expectation{notes: []string{p.backendName(), fmt.Sprintf("%d type-conflict and %d tagless messages sent", bad, tagless)}})
		if r.Unexpected != 0 {
			return
		}
		log := p.log.String()
		var read, written, batches, requests, retries, invalid, rejected, undelivered int
		// The input's summary starts with "stopped: " too; the output's has "lines read".
		k := strings.LastIndex(log, " lines read, ")
		if k < 0 {
			t.Fatalf("no summary line of the output in the log:\n%s", tail(log, 40))
		}
		start := strings.LastIndex(log[:k], "stopped: ")
		if _, err := fmt.Sscanf(log[start:], "stopped: %d lines read, %d written in %d batches (%d requests, %d retries), %d invalid, %d rejected, %d undelivered",
			&read, &written, &batches, &requests, &retries, &invalid, &rejected, &undelivered); err != nil {
			t.Fatalf("output summary: %v in %q", err, tail(log[start:], 3))
		}
		if rejected != bad+tagless {
			t.Errorf("output counted %d rejected lines, want %d (%d type conflicts, %d tagless)", rejected, bad+tagless, bad, tagless)
		}
		if !tagged && !strings.Contains(log, "cannot store a line without tags") {
			t.Errorf("the tagless lines were not logged as such on 2.3.0")
		}
		logged := strings.Count(log, "CnosDB rejected a line, dropped")
		if logged == 0 || logged > 60 {
			t.Errorf("%d refused lines logged: want some, rate-limited", logged)
		}
		t.Logf("output summary: %d read, %d written, %d requests, %d rejected (%d logged)", read, written, requests, rejected, logged)
	})
}

// TestFaultInputKilled: the input child dies by SIGKILL mid-stream;
// Telegraf restarts it after restart_delay and it resumes from the last
// committed offsets: what it wrote after the last commit comes again.
func TestFaultInputKilled(t *testing.T) {
	t.Parallel()
	forEachTelegraf(t, true, func(t *testing.T, tg stockTelegraf) {
		p := newPipeline(t, "input-child-sigkill", tg, setup{})
		tgp := p.start()
		sending := p.sendAsync(0, rate*pick(10, 30), rate)
		time.Sleep(4 * time.Second)
		pid := tgp.child(t, "telegraf-kafka-json")
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		p.waitLog("joined group", 60*time.Second)
		if newPID := tgp.child(t, "telegraf-kafka-json"); newPID == pid {
			t.Fatalf("input child %d was not restarted", pid)
		}
		<-sending
		p.waitStored(30*time.Second, 3*time.Minute)
		p.finish(expectation{})
	})
}

// TestFaultOutputKilled: the output child dies by SIGKILL mid-stream,
// while it holds lines it has read but not written: CnosDB goes down for a
// moment first, so that it certainly does (since the delivery loop, the
// output seals a batch as soon as a checkpoint arrives and stdin is empty,
// so a busy output is rarely caught holding anything). Telegraf counts a
// metric as delivered once it is in the child's stdin pipe, so those lines
// die with the child; only the input's checkpoints bring them back: the
// restarted child acknowledges a later checkpoint, the input sees the gap
// and replays from its last acknowledged offsets.
func TestFaultOutputKilled(t *testing.T) {
	t.Parallel()
	forEachTelegraf(t, true, func(t *testing.T, tg stockTelegraf) {
		p := newPipeline(t, "output-child-sigkill", tg, setup{})
		tgp := p.start()
		sending := p.sendAsync(0, rate*pick(10, 30), rate)
		time.Sleep(4 * time.Second)
		pid := tgp.child(t, "telegraf-cnosdb")
		// Two seconds of lines (about 600) pile up in the child.
		p.srv.Down()
		time.Sleep(2 * time.Second)
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if err := p.srv.Up(); err != nil {
			t.Fatal(err)
		}
		<-sending
		p.waitStored(20*time.Second, 3*time.Minute)
		if newPID := tgp.child(t, "telegraf-cnosdb"); newPID == pid {
			t.Errorf("output child %d was not restarted", pid)
		}
		p.finish(expectation{notes: []string{"CnosDB down 2 s before the SIGKILL, so the child held about 600 lines it had not written"}})
	})
}

// TestFaultTelegrafRestart: Telegraf gets SIGTERM mid-stream, as from
// systemd, and is started again. Both children must stop cleanly (the
// input commits, the output delivers what it holds) and the new ones
// resume where the old ones stopped.
func TestFaultTelegrafRestart(t *testing.T) {
	t.Parallel()
	forEachTelegraf(t, true, func(t *testing.T, tg stockTelegraf) {
		p := newPipeline(t, "telegraf-sigterm-restart", tg, setup{output: "  log_level = \"info\"\n"})
		first := p.start()
		sending := p.sendAsync(0, rate*pick(12, 40), rate)
		time.Sleep(4 * time.Second)
		children := first.children()
		stopped := time.Now()
		if orphans := first.stop(t); len(orphans) > 0 {
			t.Errorf("children %v outlived telegraf after SIGTERM", orphans)
		}
		took := time.Since(stopped)
		if first.err != nil {
			t.Errorf("telegraf exited with %v after SIGTERM", first.err)
		}
		log := p.log.String()
		// Telegraf says "shut down" for a child that exited 0. The
		// children's own summaries are not checked: Telegraf may close
		// their stderr before reading the last line ("Error reading
		// stderr: ... file already closed").
		for _, child := range []string{"telegraf-kafka-json", "telegraf-cnosdb"} {
			if !regexp.MustCompile(`Process \S*/` + child + ` shut down`).MatchString(log) {
				t.Errorf("Telegraf did not log a clean exit of %s", child)
			}
		}
		if strings.Contains(log, "were not delivered") {
			t.Errorf("the output could not deliver what it held at shutdown")
		}
		p.start()
		<-sending
		p.waitStored(30*time.Second, 3*time.Minute)
		p.finish(expectation{notes: []string{fmt.Sprintf("children %v; telegraf stopped in %v", children, took.Round(100*time.Millisecond))}})
	})
}

// TestFaultTelegrafKilled: Telegraf dies by SIGKILL mid-stream (the OOM
// killer, kill -9) and is started again. Nothing stops cleanly: the
// metrics in Telegraf's buffer are gone, and the children only learn of
// it when their pipes close. CnosDB is down from 3 s before the kill until
// the children have exited, so that Telegraf and the output certainly hold
// lines (about 900) that never reach CnosDB: the output gives them up
// after its shutdown_timeout. The input never had them acknowledged, so
// the next Telegraf's input consumes them again from the committed
// offsets.
func TestFaultTelegrafKilled(t *testing.T) {
	t.Parallel()
	forEachTelegraf(t, true, func(t *testing.T, tg stockTelegraf) {
		p := newPipeline(t, "telegraf-sigkill-restart", tg, setup{})
		first := p.start()
		sending := p.sendAsync(0, rate*pick(12, 40), rate)
		time.Sleep(4 * time.Second)
		children := first.children()
		p.srv.Down()
		time.Sleep(3 * time.Second)
		first.kill(t)
		// Both children see their pipes close: the input's stdin EOF
		// stops it; the output stops at its stdin's EOF once it has
		// given up on what it holds (shutdown_timeout, 7 s).
		deadline := time.Now().Add(40 * time.Second)
		for name, pid := range children {
			for proctest.Alive(pid) && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			if proctest.Alive(pid) {
				t.Errorf("child %s (pid %d) outlived a SIGKILLed telegraf by 40 s", name, pid)
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		if err := p.srv.Up(); err != nil {
			t.Fatal(err)
		}
		p.start()
		<-sending
		p.waitStored(30*time.Second, 3*time.Minute)
		p.finish(expectation{notes: []string{fmt.Sprintf("children %v; telegraf killed 7 s into a %d messages/s stream, CnosDB down from 3 s before the kill until the children had exited", children, rate)}})
	})
}
