// Package faults is the fault suite of issue 7: each scenario runs stock
// Telegraf with both our execd children against a real Kafka broker and a
// CnosDB test server, sends numbered JSON messages ({"n": 123, ...}),
// injects one fault, and then counts exactly which messages were stored:
// none may be missing, duplicates are counted and reported.
//
// Each message's n becomes a tag (tag_keys = ["n"]), so every message is a
// series of its own: two messages can never merge into one row, while a
// message consumed twice gets two consumption times and so two rows, which
// makes duplicates countable. A line the output merely sends twice (a retry
// after a timeout) carries the same timestamp and merges into one row, as
// in CnosDB; the server's line count shows those as "redelivered".
//
// Sets:
//
//	go test ./internal/faults                  fast subset, shortened faults (CI)
//	FAULTS_SLOW=1 go test ./internal/faults    everything, full durations (scripts/faults.sh)
//	go test -short ./...                       skips the suite
//
// Every scenario prints one line, "fault: <name>: sent N stored N missing M
// duplicates D", and appends it to the file named by FAULTS_REPORT; details
// (what the logs said) go to FAULTS_REPORT.jsonl for scripts/faults.sh.
//
// The suite needs the broker of scripts/kafka.sh (eval "$(scripts/kafka.sh
// env)") and stock Telegraf (TELEGRAF_NEW, TELEGRAF_OLD: scripts/telegraf.sh);
// without them it skips.
package faults
