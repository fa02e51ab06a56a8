package cnosdbtest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"
)

// BenchmarkWriteKeepEvery is the test server as scripts/bench.sh runs it
// (2.3.0 dialect, -keep-every 1000): writes of 2,000 guide lines, each
// line checked and counted, one in a thousand kept. A line is one op; its
// cost is what both paths of a benchmark pay the server.
func BenchmarkWriteKeepEvery(b *testing.B) {
	s, err := Start(Options{Dialect: V230, KeepEvery: 1000})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const perWrite = 2000
	var body bytes.Buffer
	ts := time.Now().UnixNano()
	for i := 0; i < perWrite; i++ {
		fmt.Fprintf(&body, "kafka_consumer,host=bench-host pressure=%d.%d,temperature=23.4,visibility=80.2 %d\n", i%10, i%7, ts+int64(i)*1000)
	}
	client := &http.Client{}
	post := func() {
		r, err := http.NewRequest(http.MethodPost, s.URL()+"/api/v1/write?db=public", bytes.NewReader(body.Bytes()))
		if err != nil {
			b.Fatal(err)
		}
		r.Header.Set("Authorization", rootAuth)
		resp, err := client.Do(r)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += perWrite {
		post()
	}
}
