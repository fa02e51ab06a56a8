package delivery

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// socketName is the socket's name inside the listener's private directory.
const socketName = "ack.sock"

// maxSocketPath is what a Unix socket address holds on Linux (108 bytes,
// with the terminating NUL).
const maxSocketPath = 107

// Listener is the input's end of the loop: a Unix socket in a fresh
// directory only its user can enter, so no other user can send
// acknowledgements, and a new path per process, so an output never
// acknowledges to a successor what its predecessor wrote.
type Listener struct {
	dir    string
	path   string
	ln     *net.UnixListener
	handle func(Event)
	bad    func(error)

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// Listen creates the socket under parent (the system's temporary directory
// when empty). handle is called for each event, from one goroutine per
// connection; bad is told about lines that are not events.
func Listen(parent string, handle func(Event), bad func(error)) (*Listener, error) {
	dir, err := os.MkdirTemp(parent, "telegraf-kafka-json-")
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, socketName)
	if len(path) > maxSocketPath || strings.ContainsAny(path, "\n\r") {
		os.Remove(dir)
		return nil, fmt.Errorf("socket path %q is too long for a Unix socket, or holds a newline", path)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		os.Remove(dir)
		return nil, err
	}
	l := &Listener{dir: dir, path: path, ln: ln, handle: handle, bad: bad, conns: map[net.Conn]struct{}{}}
	l.wg.Add(1)
	go l.accept()
	return l, nil
}

// Path is the socket's path, for the markers to carry.
func (l *Listener) Path() string { return l.path }

func (l *Listener) accept() {
	defer l.wg.Done()
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				l.bad(fmt.Errorf("accepting on %s: %w", l.path, err))
			}
			return
		}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			conn.Close()
			return
		}
		l.conns[conn] = struct{}{}
		l.wg.Add(1)
		l.mu.Unlock()
		go l.serve(conn)
	}
}

func (l *Listener) serve(conn net.Conn) {
	defer l.wg.Done()
	defer func() {
		l.mu.Lock()
		delete(l.conns, conn)
		l.mu.Unlock()
		conn.Close()
	}()
	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		e, err := ParseEvent(sc.Text())
		if err != nil {
			l.bad(err)
			return // not our output: stop listening to it
		}
		l.handle(e)
	}
}

// Close stops listening, waits for the connections' handlers to return
// and removes the socket and its directory.
func (l *Listener) Close() error {
	l.mu.Lock()
	l.closed = true
	for c := range l.conns {
		c.Close()
	}
	l.mu.Unlock()
	err := l.ln.Close()
	l.wg.Wait()
	os.RemoveAll(l.dir)
	return err
}
