package execd

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/influxdata/telegraf"
)

// Logger writes one line per message to stderr, starting with Telegraf's
// level indicator ("E! ", "W! ", "I! ", "D! ", "T! ") and no timestamp:
// Telegraf 1.32 and later read that prefix and log the line at that level
// with its own timestamp; older releases log every line as an error, which
// is why the default level keeps normal operation quiet.
//
// It implements telegraf.Logger so Telegraf's helpers (Kafka SASL/TLS
// config) can log through it.
type Logger struct {
	name  string
	level telegraf.LogLevel

	mu  sync.Mutex
	out io.Writer
	buf []byte
}

var _ telegraf.Logger = (*Logger)(nil)

// NewLogger logs for the plugin called name (e.g. "inputs.kafka_consumer")
// at level and above.
func NewLogger(name string, level telegraf.LogLevel) *Logger {
	return &Logger{name: name, level: level, out: os.Stderr}
}

// ParseLevel accepts Telegraf's level names in any case; "" gives def.
func ParseLevel(name string, def telegraf.LogLevel) (telegraf.LogLevel, error) {
	if name == "" {
		return def, nil
	}
	level := telegraf.LogLevelFromString(strings.ToLower(name))
	if level == telegraf.None {
		return def, fmt.Errorf("log_level %q: want one of error, warn, info, debug, trace", name)
	}
	return level, nil
}

// SetOutput redirects the log, for tests.
func (l *Logger) SetOutput(w io.Writer) {
	l.mu.Lock()
	l.out = w
	l.mu.Unlock()
}

// SetLevel changes the level after the config has been read.
func (l *Logger) SetLevel(level telegraf.LogLevel) {
	l.mu.Lock()
	l.level = level
	l.mu.Unlock()
}

func (l *Logger) Level() telegraf.LogLevel {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.level
}

// AddAttribute is part of telegraf.Logger; attributes are not printed.
func (*Logger) AddAttribute(string, interface{}) {}

func (l *Logger) print(level telegraf.LogLevel, msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.level.Includes(level) {
		return
	}
	b := append(l.buf[:0], level.Indicator()...)
	b = append(b, " ["...)
	b = append(b, l.name...)
	b = append(b, "] "...)
	// Telegraf reads stderr line by line: a message must stay one line.
	for i := 0; i < len(msg); i++ {
		switch c := msg[i]; c {
		case '\n':
			b = append(b, `\n`...)
		case '\r':
			b = append(b, `\r`...)
		default:
			b = append(b, c)
		}
	}
	b = append(b, '\n')
	l.out.Write(b) //nolint:errcheck // nowhere left to report a failed log write
	l.buf = b
}

func (l *Logger) enabled(level telegraf.LogLevel) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.level.Includes(level)
}

func (l *Logger) logf(level telegraf.LogLevel, format string, args ...interface{}) {
	if l.enabled(level) {
		l.print(level, fmt.Sprintf(format, args...))
	}
}

func (l *Logger) log(level telegraf.LogLevel, args ...interface{}) {
	if l.enabled(level) {
		l.print(level, strings.TrimSuffix(fmt.Sprintln(args...), "\n"))
	}
}

func (l *Logger) Errorf(format string, args ...interface{}) { l.logf(telegraf.Error, format, args...) }
func (l *Logger) Error(args ...interface{})                 { l.log(telegraf.Error, args...) }
func (l *Logger) Warnf(format string, args ...interface{})  { l.logf(telegraf.Warn, format, args...) }
func (l *Logger) Warn(args ...interface{})                  { l.log(telegraf.Warn, args...) }
func (l *Logger) Infof(format string, args ...interface{})  { l.logf(telegraf.Info, format, args...) }
func (l *Logger) Info(args ...interface{})                  { l.log(telegraf.Info, args...) }
func (l *Logger) Debugf(format string, args ...interface{}) { l.logf(telegraf.Debug, format, args...) }
func (l *Logger) Debug(args ...interface{})                 { l.log(telegraf.Debug, args...) }
func (l *Logger) Tracef(format string, args ...interface{}) { l.logf(telegraf.Trace, format, args...) }
func (l *Logger) Trace(args ...interface{})                 { l.log(telegraf.Trace, args...) }

// RateLimit lets a kind of message through at most Burst times per Interval,
// so a flood of bad input cannot fill the disk, and tells how many were
// held back so the next line that passes can say so.
type RateLimit struct {
	Interval time.Duration
	Burst    int

	mu         sync.Mutex
	start      time.Time
	passed     int
	suppressed int
}

// Allow reports whether to log now and how many messages were suppressed
// since the last one that was allowed.
func (r *RateLimit) Allow(now time.Time) (ok bool, suppressed int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Sub(r.start) >= r.Interval {
		r.start = now
		r.passed = 0
	}
	if r.passed >= r.Burst {
		r.suppressed++
		return false, 0
	}
	r.passed++
	suppressed, r.suppressed = r.suppressed, 0
	return true, suppressed
}
