package progress

import (
	"reflect"
	"testing"
)

// TestCounter: a phase change and its end are reported at once, a note
// keeps the phase's count, nothing is reported before the first phase.
func TestCounter(t *testing.T) {
	var got []Event
	c := New(func(e Event) { got = append(got, e) })
	_, _ = c.Write(make([]byte, 10)) // before any phase: not reported
	c.Begin("transfer", 5, 100)
	_, _ = c.Write(make([]byte, 20))
	c.Note("retry", "connection lost")
	c.End()
	want := []Event{
		{Phase: "transfer", Bytes: 5, Total: 100},
		{Phase: "retry", Bytes: 25, Total: 100, Message: "connection lost"},
		{Phase: "transfer", Bytes: 25, Total: 100},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("events %+v, want %+v", got, want)
	}
	New(nil).Begin("transfer", 0, -1) // no function: no report, no panic
}
