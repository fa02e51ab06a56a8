package proctest

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

func TestChildrenAndAlive(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	if got := Children(os.Getpid())["sleep"]; got != pid {
		t.Fatalf("children %v, want sleep %d", Children(os.Getpid()), pid)
	}
	if !Alive(pid) {
		t.Fatal("a running child read as gone")
	}
	cmd.Process.Kill()
	// Killed and not yet waited for: a zombie, which has exited.
	for deadline := time.Now().Add(5 * time.Second); Alive(pid); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a killed child still reads as alive")
		}
	}
	if _, _, ok := stat(pid); !ok {
		t.Fatal("the zombie was gone before Wait")
	}
	cmd.Wait()
	if _, ok := Children(os.Getpid())["sleep"]; ok {
		t.Fatal("an exited child listed")
	}
}
