package registry

import (
	"net/http"
	"sync"
)

// WriteTracker records the repositories written to from the moment it
// starts: the garbage collector marks ahead of its window, then marks again
// inside it only the repositories that changed meanwhile.
type WriteTracker struct {
	gate *Gate

	mu      sync.Mutex
	repos   map[string]struct{}
	unknown bool // a write whose repository could not be told
}

// TrackWrites starts recording. The repositories of the writes already in
// flight are recorded at once: they may change after it starts.
func (g *Gate) TrackWrites() *WriteTracker {
	t := &WriteTracker{gate: g, repos: map[string]struct{}{}}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, w := range g.inflight {
		t.add(w.Repository)
	}
	g.trackers = append(g.trackers, t)
	return t
}

// Stop ends the recording and returns the repositories written to; all is
// true when a write could not be attributed to a repository, and every
// repository must be taken as changed. Writes admitted before Stop are
// recorded, so stop once the writes are drained.
func (t *WriteTracker) Stop() (repos map[string]struct{}, all bool) {
	g := t.gate
	g.mu.Lock()
	for i, x := range g.trackers {
		if x == t {
			g.trackers = append(g.trackers[:i], g.trackers[i+1:]...)
			break
		}
	}
	g.mu.Unlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.repos, t.unknown
}

func (t *WriteTracker) add(repo string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if repo == "" {
		t.unknown = true
		return
	}
	t.repos[repo] = struct{}{}
}

// repositoryOf is the repository a write request names, "" when the gate
// was built without a router or the path names none.
func (g *Gate) repositoryOf(r *http.Request) string {
	if g.repository == nil {
		return ""
	}
	return g.repository(r)
}
