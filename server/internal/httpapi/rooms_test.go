package httpapi

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

type roomsPage struct {
	Rooms []struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"rooms"`
	Next *string `json:"next"`
}

// GET /rooms with limit and after pages through the rooms: each exactly
// once, in creation order, next present only while more follow. Without
// either it lists every room, as protocol v1 has it.
func TestRoomsPageThroughEveryRoomOnceInOrder(t *testing.T) {
	t.Parallel()
	lt := newLimitTest(t, Limits{})
	token := lt.api.mustRegister("alice")
	var want []string
	for i := range 250 {
		want = append(want, lt.api.mustCreateRoom(fmt.Sprint("room ", i)))
	}
	slices.Sort(want) // creation order, to the millisecond; ids break ties

	for _, limit := range []int{1, 7, 100, 250, 500} {
		t.Run(fmt.Sprint("limit ", limit), func(t *testing.T) {
			var got []string
			after := ""
			for pages := 1; ; pages++ {
				if pages > len(want)+1 {
					t.Fatalf("still paging after %d pages", pages)
				}
				q := url.Values{"limit": {fmt.Sprint(limit)}}
				if after != "" {
					q.Set("after", after)
				}
				page := lt.mustListRooms(token, q)
				if len(page.Rooms) > limit {
					t.Fatalf("page %d: got %d rooms, want at most %d", pages, len(page.Rooms), limit)
				}
				for _, r := range page.Rooms {
					got = append(got, r.ID)
				}
				if page.Next == nil {
					break
				}
				if *page.Next == "" || len(page.Rooms) != limit {
					t.Fatalf("page %d: got next %q after %d rooms, want a cursor after a full page", pages, *page.Next, len(page.Rooms))
				}
				after = *page.Next
			}
			if !slices.Equal(got, want) {
				t.Errorf("got %d rooms, want each of the %d once, in order", len(got), len(want))
			}
		})
	}

	t.Run("after alone takes pages of 100", func(t *testing.T) {
		page := lt.mustListRooms(token, url.Values{"after": {""}})
		if len(page.Rooms) != 100 || page.Next == nil {
			t.Errorf("got %d rooms and next %v, want 100 and a next", len(page.Rooms), page.Next)
		}
	})

	t.Run("neither lists every room", func(t *testing.T) {
		page := lt.mustListRooms(token, nil)
		if len(page.Rooms) != len(want) || page.Next != nil {
			t.Errorf("got %d rooms and next %v, want all %d and no next", len(page.Rooms), page.Next, len(want))
		}
	})
}

func TestRoomsPageRefusesABadLimitOrCursor(t *testing.T) {
	t.Parallel()
	lt := newLimitTest(t, Limits{})
	token := lt.api.mustRegister("alice")
	id := lt.api.mustCreateRoom("lobby")
	for _, query := range []string{
		"limit=0", "limit=501", "limit=-1", "limit=ten",
		"after=nope", "after=" + strings.ToUpper(id), "after=" + id + "0", "after=" + id[:25] + "%2F",
	} {
		t.Run(query, func(t *testing.T) {
			got := lt.do("GET", "/api/v1/rooms?"+query, attackerAddr, token, nil)
			if got.status != http.StatusBadRequest {
				t.Fatalf("got %d %s, want 400", got.status, got.body)
			}
			if e := mustDecode[errorJSON](t, got); e.Error.Code != "bad_request" {
				t.Errorf("got code %q, want bad_request", e.Error.Code)
			}
		})
	}
}

func (lt *limitTest) mustListRooms(token string, q url.Values) roomsPage {
	lt.t.Helper()
	path := "/api/v1/rooms"
	if q != nil {
		path += "?" + q.Encode()
	}
	got := lt.do("GET", path, attackerAddr, token, nil)
	if got.status != http.StatusOK {
		lt.t.Fatalf("GET %s: got %d %s, want 200", path, got.status, got.body)
	}
	return mustDecode[roomsPage](lt.t, got)
}
