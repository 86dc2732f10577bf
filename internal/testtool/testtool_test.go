package testtool

import "testing"

func TestFindFindsACommandOnThePath(t *testing.T) {
	if got := Find(t, "go", "golang"); got == "" {
		t.Fatal("got no path for go, which runs this test")
	}
}
