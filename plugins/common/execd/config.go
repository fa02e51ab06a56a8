package execd

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// envReference matches ${NAME}, ${NAME:-default}, ${NAME-default} and
// $NAME, the forms Telegraf expands in its config files.
var envReference = regexp.MustCompile(`\$\{(\w+)(?:(:?-)([^}]*))?\}|\$(\w+)`)

// ExpandEnv replaces references to set environment variables; a reference
// to an unset one keeps its default if it has one, else stays as written,
// as in Telegraf, so a literal "$" in a password survives.
func ExpandEnv(text string) string {
	return envReference.ReplaceAllStringFunc(text, func(ref string) string {
		m := envReference.FindStringSubmatch(ref)
		name, op, def := m[1], m[2], m[3]
		if name == "" {
			name = m[4]
		}
		value, set := os.LookupEnv(name)
		switch {
		case op == ":-" && value == "":
			return def
		case op == "-" && !set:
			return def
		case set:
			return value
		}
		return ref
	})
}

// LoadConfig decodes the single [[kind.name]] table of the TOML file at
// path into plugin (a pointer to the plugin's struct, holding its
// defaults). An option the plugin does not know is an error that names it
// and the file: a typo must never be ignored silently.
func LoadConfig(path, kind, name string, plugin any) error {
	text, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading config: %w", err)
	}
	if err := DecodeConfig(string(text), kind, name, plugin); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	return nil
}

// DecodeConfig is LoadConfig on text already read.
func DecodeConfig(text, kind, name string, plugin any) error {
	table := "[[" + kind + "." + name + "]]"
	var file map[string]map[string][]toml.Primitive
	md, err := toml.Decode(ExpandEnv(text), &file)
	if err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			return fmt.Errorf("line %d: %s", perr.Position.Line, perr.Message)
		}
		return fmt.Errorf("expected one %s table: %w", table, err)
	}
	for k, plugins := range file {
		for n := range plugins {
			if k != kind || n != name {
				return fmt.Errorf("unexpected table [[%s.%s]]: this file holds one %s table", k, n, table)
			}
		}
	}
	instances := file[kind][name]
	if len(instances) != 1 {
		return fmt.Errorf("found %d %s tables, want exactly one (run one process per instance)", len(instances), table)
	}
	if err := md.PrimitiveDecode(instances[0], plugin); err != nil {
		return fmt.Errorf("%s: %w", table, err)
	}
	var unknown []string
	for _, key := range md.Undecoded() {
		if len(key) > 2 && key[0] == kind && key[1] == name {
			unknown = append(unknown, strings.Join(key[2:], "."))
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("%s: unknown option(s) %q", table, unknown)
	}
	return nil
}
