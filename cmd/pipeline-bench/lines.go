package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/kafka-cnosdb/telegraf-execd/plugins/common/execd"
	"github.com/kafka-cnosdb/telegraf-execd/plugins/parsers/jsonlp"
)

// benchHost is the host tag Telegraf adds; the bench's agent sets it.
const benchHost = "bench-host"

// linesCmd writes the line protocol Telegraf hands the output for the
// messages preload sends: our JSON converter's lines plus the host tag,
// one nanosecond apart so that no two lines share series and time.
func linesCmd(args []string) error {
	fs := flag.NewFlagSet("lines", flag.ContinueOnError)
	count := fs.Int("count", 300000, "lines to write")
	shapeName := fs.String("shape", "guide", "message shape: guide or nested")
	out := fs.String("out", "", "file to write")
	seed := fs.Uint64("seed", 1, "random seed")
	if err := fs.Parse(args); err != nil {
		return err
	}
	make1, err := shapeByName(*shapeName)
	if err != nil {
		return err
	}
	if *out == "" || *count <= 0 {
		return errors.New("-out and a positive -count are required")
	}
	conv, err := jsonlp.New(jsonlp.Config{MetricName: "kafka_consumer", Strict: true})
	if err != nil {
		return err
	}
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	rng := rand.New(rand.NewPCG(*seed, *seed^0x9e3779b97f4a7c15))
	start := time.Now()
	meta := &jsonlp.Meta{Tags: []jsonlp.Tag{{Key: "host", Value: benchHost}}}
	var doc, line []byte
	for i := range *count {
		doc = make1(doc[:0], rng)
		meta.Now = start.Add(time.Duration(i))
		var n int
		line, n, err = conv.Append(line[:0], doc, meta)
		if err != nil || n != 1 {
			f.Close()
			return fmt.Errorf("converting %s: %d lines, %v", doc, n, err)
		}
		if _, err := w.Write(line); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// sinkStatus is what discard reports in its -done file.
type sinkStatus struct {
	Lines      int64 `json:"lines"`
	FirstNanos int64 `json:"first_unix_nano"` // when the first bytes arrived
	FirstLines int64 `json:"first_lines"`     // lines in that first read
	DoneNanos  int64 `json:"done_unix_nano"`  // when the expect-th line arrived; 0 before
}

// discardCmd is the ceiling run's output child: it only reads stdin and
// throws it away. Counting newlines is the least it must do to say when
// the last line arrived; it rewrites its status file every 100 ms and at
// that moment. It waits on Telegraf the way telegraf-cnosdb does (a 1 MiB
// pipe, one thread, the paced reader): a plain reader is woken by each
// of the one-metric writes of Telegraf before 1.28 and costs more than
// our output there, so the run would be no bound.
func discardCmd(args []string) error {
	fs := flag.NewFlagSet("discard", flag.ContinueOnError)
	expect := fs.Int64("expect", 0, "lines after which the run is complete")
	done := fs.String("done", "", "status file to write")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *done == "" {
		return errors.New("-done is required")
	}
	var st sinkStatus
	write := func() error { return writeJSONAtomic(*done, st) }
	execd.GrowPipe(os.Stdin)
	execd.LimitProcs(1)
	stdin := execd.NewPacedReader(os.Stdin)
	buf := make([]byte, 256<<10)
	last := time.Now()
	for {
		n, err := stdin.Read(buf)
		if n > 0 {
			now := time.Now()
			lines := int64(bytes.Count(buf[:n], []byte{'\n'}))
			if st.FirstNanos == 0 {
				st.FirstNanos, st.FirstLines = now.UnixNano(), lines
			}
			st.Lines += lines
			if st.DoneNanos == 0 && *expect > 0 && st.Lines >= *expect {
				st.DoneNanos = now.UnixNano()
				if werr := write(); werr != nil {
					return werr
				}
				last = now
			} else if now.Sub(last) >= 100*time.Millisecond {
				if werr := write(); werr != nil {
					return werr
				}
				last = now
			}
		}
		if errors.Is(err, io.EOF) {
			return write()
		}
		if err != nil {
			return err
		}
	}
}

// writeJSONAtomic replaces path, so a reader never sees half a file.
func writeJSONAtomic(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".status-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}
