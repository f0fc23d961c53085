// The state a run keeps in storage while it works, so that a run the
// process did not survive is known and finished after a restart: the marker
// of the run in progress and the journal of the repositories it removes.

package gc

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"time"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
)

// runMarker is the content of markerPath while a run works.
type runMarker struct {
	Run       string    `json:"run"`
	Trigger   string    `json:"trigger"`
	StartedAt time.Time `json:"startedAt"`
	Phase     string    `json:"phase"`
}

// The phases a marker names.
const (
	phaseStarting  = "starting"
	phaseWindow    = "read-only window (and the mark ahead of it: selecting, marking, removing, detaching)"
	phaseFreeing   = "freeing space after the window"
	phaseRecording = "writing the record"
)

// runID names a run in the trash and the journal: its start, sortable.
func runID(started time.Time) string {
	return started.UTC().Format("20060102T150405.000000000Z")
}

func writeMarker(ctx context.Context, driver storagedriver.StorageDriver, m runMarker) error {
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := driver.PutContent(ctx, markerPath, data); err != nil {
		return fmt.Errorf("writing the marker of the run in progress: %w", err)
	}
	return nil
}

// readMarker returns the marker, or nil when no run was in progress.
func readMarker(ctx context.Context, driver storagedriver.StorageDriver) (*runMarker, error) {
	data, err := driver.GetContent(ctx, markerPath)
	if sweepNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", markerPath, err)
	}
	var m runMarker
	if err := json.Unmarshal(data, &m); err != nil {
		// A marker cut short by the crash still says a run was going on.
		return &runMarker{Phase: "unknown (" + markerPath + " unreadable)"}, nil
	}
	return &m, nil
}

func journalPath(run string) string { return path.Join(journalRoot, run+".json") }

// writeJournal records the repositories a run is about to remove, before it
// touches any of them.
func writeJournal(ctx context.Context, driver storagedriver.StorageDriver, run string, repos []string) error {
	data, err := json.Marshal(repos)
	if err != nil {
		return err
	}
	if err := driver.PutContent(ctx, journalPath(run), data); err != nil {
		return fmt.Errorf("writing the journal of the repositories to remove: %w", err)
	}
	return nil
}

// readJournals returns the repositories of every journal left in storage,
// by journal path.
func readJournals(ctx context.Context, driver storagedriver.StorageDriver) (map[string][]string, error) {
	files, err := driver.List(ctx, journalRoot)
	if sweepNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", journalRoot, err)
	}
	out := make(map[string][]string, len(files))
	for _, f := range files {
		data, err := driver.GetContent(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", f, err)
		}
		var repos []string
		if err := json.Unmarshal(data, &repos); err != nil {
			// Cut short while written: no repository was touched yet.
			repos = nil
		}
		out[f] = repos
	}
	return out, nil
}
