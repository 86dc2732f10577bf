// Package scenario reads the load generator's scenario files: who connects,
// which rooms they share, how fast messages arrive in each stage of the run,
// and the thresholds that decide whether the run passed.
//
// A scenario file is YAML, decoded strictly (an unknown field is an error),
// and every problem in it is reported at once with its line and field path:
//
//	smoke.yaml:12: stages[1].duration: "ten" is not a duration (like 10s or 1m30s)
//	smoke.yaml:20: users.count (10) is smaller than the largest room (rooms[1]: 20 members)
package scenario

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/parleychat/parley/loadtest/schedule"
)

// Scenario is one load test: its users, their rooms, the arrival rate over
// the run's stages, and the bar the run must clear.
type Scenario struct {
	// Name labels the run in reports; it defaults to the file's name
	// without its extension.
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	Users       Users  `yaml:"users"`
	// Rooms are groups of rooms alike in size; Layout deals users into
	// them.
	Rooms   []RoomGroup `yaml:"rooms"`
	Message MessageSize `yaml:"message"`
	// Typing is the fraction (0 to 1) of sends that a typing frame
	// precedes; 0 by default.
	Typing float64 `yaml:"typing"`
	// Stages set the arrival rate of messages over the run, all users
	// together (see package schedule).
	Stages []schedule.Stage `yaml:"stages"`
	// Drain is how long to wait after the last send for outstanding acks
	// and deliveries before counting them missing; 5s by default.
	Drain time.Duration `yaml:"drain"`
	// Thresholds must all hold for the run to pass; written as strings,
	// like "delivery_p99 < 250ms".
	Thresholds []Threshold `yaml:"thresholds"`
}

// Users are the run's virtual users.
type Users struct {
	Count int `yaml:"count"`
	// Prefix starts every username; "lt" by default. Usernames are 3 to
	// 32 of A-Za-z0-9_.-, so it is at most 16 of them, leaving room for
	// what the load generator appends.
	Prefix string `yaml:"prefix"`
	// TokenFile, when set, names a file of bearer tokens, one a line, for
	// the users to use instead of signing up (staging, where sign-up may
	// be closed). Parse resolves a relative path against the scenario
	// file's directory.
	TokenFile string `yaml:"token_file"`
}

// RoomGroup is Count rooms of Members users each.
type RoomGroup struct {
	// Name labels the group's rooms ("team" gives team-0, team-1, ...);
	// "group<i>" by default.
	Name    string `yaml:"name"`
	Count   int    `yaml:"count"`
	Members int    `yaml:"members"`
}

// MessageSize bounds message bodies, drawn uniformly from MinBytes to
// MaxBytes (20 to 200 by default). Bodies are ASCII, so bytes are the
// characters the protocol limits to 1 to 4000.
type MessageSize struct {
	MinBytes int `yaml:"min_bytes"`
	MaxBytes int `yaml:"max_bytes"`
}

// Protocol and default limits.
const (
	maxBodyChars    = 4000 // protocol-v1: a body is 1 to 4000 characters
	defaultMinBytes = 20
	defaultMaxBytes = 200
	defaultPrefix   = "lt"
	defaultDrain    = 5 * time.Second
)

var (
	userPrefix = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,16}$`)
	// A group's name goes into room names, which are at most 64
	// characters; 32 leaves room for the index and a run's own prefix.
	groupName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,32}$`)
)

// Load reads and checks the scenario file at path.
func Load(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, path)
}

// Parse reads and checks a scenario. source names it in errors and, when it
// is a path, is where a relative users.token_file is found. The error joins
// every problem, each "source:line: field.path ...".
func Parse(data []byte, source string) (*Scenario, error) {
	d := newDecoder(source)
	s := &Scenario{}
	root := d.document(data)
	if root != nil {
		d.decode(root, reflect.ValueOf(s).Elem(), "")
	}
	// Check whatever decoded, but not a file that did not parse or is not
	// a mapping: "users.count is required" would only bury the reason.
	if root != nil && !d.bad[""] {
		s.setDefaults(d)
		s.validate(d)
	}
	if err := d.err(); err != nil {
		return nil, err
	}
	return s, nil
}

// setDefaults fills what the file left out. A default stands in only for a
// field the file does not give, so that "drain: 0s" is an error rather than
// silently five seconds.
func (s *Scenario) setDefaults(d *decoder) {
	if !d.given("name") {
		s.Name = strings.TrimSuffix(filepath.Base(d.source), filepath.Ext(d.source))
	}
	if !d.given("users.prefix") {
		s.Users.Prefix = defaultPrefix
	}
	if s.Users.TokenFile != "" && !filepath.IsAbs(s.Users.TokenFile) {
		s.Users.TokenFile = filepath.Join(filepath.Dir(d.source), s.Users.TokenFile)
	}
	for i := range s.Rooms {
		if !d.given(fmt.Sprintf("rooms[%d].name", i)) {
			s.Rooms[i].Name = fmt.Sprintf("group%d", i)
		}
	}
	// Given one bound, the other default gives way rather than contradict
	// it: max_bytes: 10 alone means 10 to 10, not an error about a
	// min_bytes the author never wrote.
	minGiven, maxGiven := d.given("message.min_bytes"), d.given("message.max_bytes")
	if !minGiven {
		s.Message.MinBytes = defaultMinBytes
		if maxGiven {
			s.Message.MinBytes = max(1, min(defaultMinBytes, s.Message.MaxBytes))
		}
	}
	if !maxGiven {
		s.Message.MaxBytes = max(defaultMaxBytes, s.Message.MinBytes)
	}
	if !d.given("drain") {
		s.Drain = defaultDrain
	}
}

func (s *Scenario) validate(d *decoder) {
	if s.Name == "" || s.Name == "." {
		d.fail("name", "is required")
	}

	switch {
	case !d.given("users.count"):
		d.fail("users.count", "is required")
	case s.Users.Count < 1:
		d.fail("users.count", "must be at least 1, got %d", s.Users.Count)
	}
	if !userPrefix.MatchString(s.Users.Prefix) {
		d.fail("users.prefix", "must be 1 to 16 of A-Za-z0-9_.- (usernames are at most 32), got %q", s.Users.Prefix)
	}

	if len(s.Rooms) == 0 {
		d.fail("rooms", "needs at least one group of rooms")
	}
	names := map[string]int{}
	largest := -1
	for i, g := range s.Rooms {
		at := fmt.Sprintf("rooms[%d]", i)
		if g.Count < 1 {
			d.fail(at+".count", "must be at least 1, got %d", g.Count)
		}
		if g.Members < 1 {
			d.fail(at+".members", "must be at least 1, got %d", g.Members)
		}
		if !groupName.MatchString(g.Name) {
			d.fail(at+".name", "must be 1 to 32 of A-Za-z0-9_.- (it goes into room names), got %q", g.Name)
		}
		if first, dup := names[g.Name]; dup {
			d.fail(at+".name", "%q is also the name of rooms[%d]: room names must differ", g.Name, first)
		}
		names[g.Name] = i
		if largest < 0 || g.Members > s.Rooms[largest].Members {
			largest = i
		}
	}
	// A room cannot seat the same user twice.
	if largest >= 0 && s.Users.Count >= 1 && s.Rooms[largest].Members > s.Users.Count {
		d.fail("users.count", "(%d) is smaller than the largest room (rooms[%d]: %d members)",
			s.Users.Count, largest, s.Rooms[largest].Members)
	}

	m := s.Message
	if m.MinBytes < 1 {
		d.fail("message.min_bytes", "must be at least 1, got %d", m.MinBytes)
	}
	if m.MaxBytes > maxBodyChars {
		d.fail("message.max_bytes", "must be ≤ %d (the protocol's longest body), got %d", maxBodyChars, m.MaxBytes)
	}
	if m.MinBytes > m.MaxBytes {
		d.fail("message.min_bytes", "(%d) is more than message.max_bytes (%d)", m.MinBytes, m.MaxBytes)
	}

	if math.IsNaN(s.Typing) || s.Typing < 0 || s.Typing > 1 {
		d.fail("typing", "must be a fraction from 0 to 1, got %v", s.Typing)
	}

	if len(s.Stages) == 0 {
		d.fail("stages", "needs at least one stage")
	}
	for i, st := range s.Stages {
		at := fmt.Sprintf("stages[%d]", i)
		for _, err := range unjoin(st.Validate()) {
			if fe, ok := errors.AsType[*schedule.FieldError](err); ok {
				d.fail(at+"."+fe.Field, "%s", fe.Problem)
			} else {
				d.fail(at, "%v", err)
			}
		}
	}

	if s.Drain <= 0 {
		d.fail("drain", "must be > 0 (the time to wait for the last acks and deliveries), got %v", s.Drain)
	}
}

// unjoin lists the errors errors.Join combined.
func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// Plan lays out the scenario's stages. It fails only for a Scenario that
// did not come from Parse or Load, which check the stages.
func (s *Scenario) Plan() (*schedule.Plan, error) { return schedule.NewPlan(s.Stages) }

// Room is one room of a run.
type Room struct {
	Name    string // the group's name and the room's index in it: team-3
	Group   int    // index into Scenario.Rooms
	Members []int  // indexes of users, from 0 to Users.Count-1
}

// Layout deals the users into the rooms. Each room takes the next Members
// users round-robin, wrapping past the last user to the first, so a user
// may sit in several rooms, never twice in one, and every user's number of
// rooms is within one of every other's. When the rooms seat fewer users
// than there are, the rest join no room: they connect and stay idle.
func (s *Scenario) Layout() []Room {
	if s.Users.Count < 1 {
		return nil // only a Scenario that did not come through Parse
	}
	var rooms []Room
	next := 0
	for gi, g := range s.Rooms {
		for r := range g.Count {
			members := make([]int, g.Members)
			for k := range members {
				members[k] = (next + k) % s.Users.Count
			}
			next = (next + g.Members) % s.Users.Count
			rooms = append(rooms, Room{Name: fmt.Sprintf("%s-%d", g.Name, r), Group: gi, Members: members})
		}
	}
	return rooms
}
