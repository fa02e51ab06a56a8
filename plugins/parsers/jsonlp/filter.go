package jsonlp

import (
	"strings"

	"github.com/gobwas/glob"
)

// matcher matches flattened keys against tag_keys or json_string_fields.
type matcher interface{ Match(string) bool }

type exactMatcher string

func (m exactMatcher) Match(s string) bool { return string(m) == s }

type setMatcher map[string]struct{}

func (m setMatcher) Match(s string) bool { _, ok := m[s]; return ok }

type anyGlob []glob.Glob

func (g anyGlob) Match(s string) bool {
	for _, p := range g {
		if p.Match(s) {
			return true
		}
	}
	return false
}

// compileFilter follows Telegraf v1.37.2's filter.Compile without separators:
// plain strings compare exactly unless one pattern holds a wildcard, in which
// case every pattern is compiled as a glob on its own.
func compileFilter(patterns []string) (matcher, error) {
	if len(patterns) == 0 {
		return nil, nil
	}
	wildcards := false
	for _, p := range patterns {
		if strings.ContainsAny(p, "*?[") {
			wildcards = true
			break
		}
	}
	switch {
	case !wildcards && len(patterns) == 1:
		return exactMatcher(patterns[0]), nil
	case !wildcards:
		set := make(setMatcher, len(patterns))
		for _, p := range patterns {
			set[p] = struct{}{}
		}
		return set, nil
	case len(patterns) == 1:
		g, err := glob.Compile(patterns[0])
		if err != nil {
			return nil, err
		}
		return g, nil
	default:
		globs := make(anyGlob, 0, len(patterns))
		for _, p := range patterns {
			g, err := glob.Compile(p)
			if err != nil {
				return nil, err
			}
			globs = append(globs, g)
		}
		return globs, nil
	}
}
