package execd

import (
	"debug/buildinfo"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// TelegrafVersion is a Telegraf release, 1.x.y.
type TelegrafVersion struct {
	Major, Minor, Patch int
}

func (v TelegrafVersion) String() string {
	return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
}

// AtLeast reports whether v is the release major.minor.patch or later.
func (v TelegrafVersion) AtLeast(major, minor, patch int) bool {
	if v.Major != major {
		return v.Major > major
	}
	if v.Minor != minor {
		return v.Minor > minor
	}
	return v.Patch >= patch
}

const telegrafModule = "github.com/influxdata/telegraf"

var (
	// Release builds set internal.Version with -ldflags -X; go install
	// of a tagged module version records it as the main module's.
	ldflagsVersionRE = regexp.MustCompile(`github\.com/influxdata/telegraf/internal\.Version=v?(\d+)\.(\d+)\.(\d+)`)
	moduleVersionRE  = regexp.MustCompile(`^v(\d+)\.(\d+)\.(\d+)(?:$|\+)`)
)

// Parent is the Telegraf that started this process (execd runs its
// children directly).
type Parent struct {
	PID     int
	Version TelegrafVersion
	// VersionKnown is false for a build that does not record its version
	// (built with -trimpath from a source copy, say).
	VersionKnown bool
}

// ParentTelegraf reads the version of the Telegraf that started this
// process from the Go build information in the parent's executable.
// Behaviour that differs between releases, and that a child cannot
// observe, is chosen by it; callers assume the oldest release they
// support when the version is not known. ok is false when the parent is
// not Telegraf at all (a shell, a test).
func ParentTelegraf() (p Parent, ok bool) {
	p.PID = os.Getppid()
	p.Version, p.VersionKnown, ok = telegrafVersionOf(fmt.Sprintf("/proc/%d/exe", p.PID))
	return p, ok
}

// RequestFlush asks the parent Telegraf to write its outputs' buffers now,
// as SIGUSR1 does (Telegraf 1.15 and later, on Unix). It refuses when this
// process is no longer the parent's child: Telegraf died and the signal
// would reach whoever adopted it.
func (p Parent) RequestFlush() error {
	if os.Getppid() != p.PID {
		return fmt.Errorf("Telegraf (pid %d) is no longer this process's parent", p.PID)
	}
	return signalFlush(p.PID)
}

// telegrafVersionOf reads an executable's build information: whether it
// is Telegraf, and its version when recorded.
func telegrafVersionOf(executable string) (v TelegrafVersion, known, isTelegraf bool) {
	info, err := buildinfo.ReadFile(executable)
	if err != nil || info.Main.Path != telegrafModule {
		return TelegrafVersion{}, false, false
	}
	for _, s := range info.Settings {
		if s.Key == "-ldflags" {
			if v, ok := parseTelegrafVersion(ldflagsVersionRE, s.Value); ok {
				return v, true, true
			}
		}
	}
	v, known = parseTelegrafVersion(moduleVersionRE, info.Main.Version)
	return v, known, true
}

func parseTelegrafVersion(re *regexp.Regexp, text string) (TelegrafVersion, bool) {
	m := re.FindStringSubmatch(strings.TrimSpace(text))
	if m == nil {
		return TelegrafVersion{}, false
	}
	var parts [3]int
	for i := range parts {
		n, err := strconv.Atoi(m[i+1])
		if err != nil {
			return TelegrafVersion{}, false
		}
		parts[i] = n
	}
	return TelegrafVersion{parts[0], parts[1], parts[2]}, true
}
