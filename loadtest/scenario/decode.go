package scenario

import (
	"cmp"
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// decoder fills Go values from a YAML node tree by their yaml tags. It
// stands in for yaml.v3's own decoding, which stops at the first type error
// and names a line but never the field, so that a scenario's author sees
// every problem at once as "smoke.yaml:12: stages[1].duration: ...". It is
// strict: a key that names no field is an error.
type decoder struct {
	source string
	lines  map[string]int  // field path given in the file → its line
	bad    map[string]bool // paths that failed to decode, which validation then leaves alone
	probs  []problem
}

// problem is one thing wrong with the file, at a line (0 when unknown).
type problem struct {
	line int
	text string
}

var (
	durationType        = reflect.TypeFor[time.Duration]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

func newDecoder(source string) *decoder {
	return &decoder{source: source, lines: map[string]int{}, bad: map[string]bool{}}
}

// yamlError matches the line yaml.v3 puts in its syntax errors, so that they
// read like the decoder's own.
var yamlError = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// document parses data into the root mapping's node, or records why it
// cannot.
func (d *decoder) document(data []byte) *yaml.Node {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		if m := yamlError.FindStringSubmatch(err.Error()); m != nil {
			line, _ := strconv.Atoi(m[1])
			d.probs = append(d.probs, problem{line, m[2]})
		} else {
			d.probs = append(d.probs, problem{0, strings.TrimPrefix(err.Error(), "yaml: ")})
		}
		return nil
	}
	if len(doc.Content) == 0 {
		d.probs = append(d.probs, problem{0, "the file is empty"})
		return nil
	}
	return doc.Content[0]
}

// decode fills v, which must be addressable, from n; path names v in
// problems ("stages[1].duration"), "" being the whole file.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // "drain:" with nothing after it: as if not given
	}
	switch {
	case v.Type() == durationType:
		if !d.scalar(n, path) {
			return
		}
		dur, err := time.ParseDuration(n.Value)
		if err != nil {
			d.failDecode(n, path, "%q is not a duration (like 10s or 1m30s)", n.Value)
			return
		}
		v.SetInt(int64(dur))
		return
	case reflect.PointerTo(v.Type()).Implements(textUnmarshalerType):
		if !d.scalar(n, path) {
			return
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value)); err != nil {
			d.failDecode(n, path, "%v", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.mapping(n, v, path)
	case reflect.Slice:
		d.sequence(n, v, path)
	case reflect.String:
		if d.scalar(n, path) {
			v.SetString(n.Value)
		}
	case reflect.Int:
		var i int64
		if !d.scalar(n, path) {
			return
		}
		// yaml.v3 would truncate 2.5 to 2; only a YAML integer is one.
		if n.ShortTag() != "!!int" || n.Decode(&i) != nil || v.OverflowInt(i) {
			d.failDecode(n, path, "%q is not a whole number", n.Value)
			return
		}
		v.SetInt(i)
	case reflect.Float64:
		var f float64
		if !d.scalar(n, path) {
			return
		}
		if tag := n.ShortTag(); tag != "!!int" && tag != "!!float" || n.Decode(&f) != nil {
			d.failDecode(n, path, "%q is not a number", n.Value)
			return
		}
		v.SetFloat(f)
	default:
		// Only a change to the Scenario type can get here.
		panic(fmt.Sprintf("scenario: the decoder cannot fill a %s (%s)", v.Type(), path))
	}
}

func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.failDecode(n, path, "must be a mapping of fields, not %s", describe(n))
		return
	}
	fields, names := yamlFields(v.Type())
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, value := n.Content[i], n.Content[i+1]
		p := key.Value
		if path != "" {
			p = path + "." + key.Value
		}
		if first, dup := seen[key.Value]; dup {
			d.failLine(key.Line, p, "given twice (first on line %d)", first)
			continue
		}
		seen[key.Value] = key.Line
		index, ok := fields[key.Value]
		if !ok {
			d.failLine(key.Line, p, "unknown field (known: %s)", strings.Join(names, ", "))
			continue
		}
		d.lines[p] = key.Line
		d.decode(value, v.Field(index), p)
	}
}

func (d *decoder) sequence(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.failDecode(n, path, "must be a list, not %s", describe(n))
		return
	}
	items := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		d.lines[p] = item.Line
		d.decode(item, items.Index(i), p)
	}
	v.Set(items)
}

// scalar reports whether n is a single value, recording a problem if not.
func (d *decoder) scalar(n *yaml.Node, path string) bool {
	if n.Kind != yaml.ScalarNode {
		d.failDecode(n, path, "must be a single value, not %s", describe(n))
		return false
	}
	return true
}

// yamlFields maps a struct's yaml names to its field indexes, and lists the
// names for a person who misspelled one.
func yamlFields(t reflect.Type) (map[string]int, []string) {
	fields := map[string]int{}
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = i
		names = append(names, name)
	}
	return fields, names
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return strconv.Quote(n.Value)
	}
}

// failDecode records that the value at path, from node n, could not be read.
// It points at the field's key when there is one: a list or mapping in the
// wrong place starts on the line after it.
func (d *decoder) failDecode(n *yaml.Node, path, format string, args ...any) {
	line, ok := d.lines[path]
	if !ok {
		line = n.Line
	}
	d.failLine(line, path, format, args...)
}

// failLine records that the value at path, on line, could not be read.
func (d *decoder) failLine(line int, path, format string, args ...any) {
	d.bad[path] = true
	label := path
	if label == "" {
		label = "the file"
	}
	d.probs = append(d.probs, problem{line, label + ": " + fmt.Sprintf(format, args...)})
}

// fail records a problem with a decoded value: text reads after the path
// ("must be at least 1"). A path that failed to decode, or one inside or
// around it, is not reported again: its zero value would only add noise.
func (d *decoder) fail(path, format string, args ...any) {
	for b := range d.bad {
		if within(path, b) || within(b, path) {
			return
		}
	}
	d.probs = append(d.probs, problem{d.lineOf(path), path + " " + fmt.Sprintf(format, args...)})
}

// within reports whether path is inner or names the same value.
func within(inner, path string) bool {
	if !strings.HasPrefix(inner, path) {
		return false
	}
	rest := inner[len(path):]
	return path == "" || rest == "" || rest[0] == '.' || rest[0] == '['
}

// given reports whether the file set the value at path.
func (d *decoder) given(path string) bool {
	_, ok := d.lines[path]
	return ok
}

// lineOf is the line of the value at path, or of the nearest enclosing one
// the file gives: a missing field is reported where its parent is.
func (d *decoder) lineOf(path string) int {
	for path != "" {
		if line, ok := d.lines[path]; ok {
			return line
		}
		path = path[:max(0, strings.LastIndexAny(path, ".["))]
	}
	return 0
}

// err joins the problems in the order of their lines, each prefixed with
// the source and line as compilers do.
func (d *decoder) err() error {
	slices.SortStableFunc(d.probs, func(a, b problem) int { return cmp.Compare(a.line, b.line) })
	errs := make([]error, len(d.probs))
	for i, p := range d.probs {
		if p.line > 0 {
			errs[i] = fmt.Errorf("%s:%d: %s", d.source, p.line, p.text)
		} else {
			errs[i] = fmt.Errorf("%s: %s", d.source, p.text)
		}
	}
	return errors.Join(errs...)
}
