package verify

import (
	"time"

	"github.com/opencontainers/go-digest"
)

// Problems found with a blob.
const (
	// ProblemCorrupt: the blob's content does not match its digest.
	ProblemCorrupt = "corrupt"
	// ProblemMissing: a link or manifest names a blob whose directory
	// exists but whose data file is absent.
	ProblemMissing = "missing"
	// ProblemTruncated: the blob is shorter than the size a manifest's
	// descriptor gives it.
	ProblemTruncated = "truncated"
	// ProblemDanglingLink: a link file is absent, unreadable or names a
	// digest whose blob directory does not exist.
	ProblemDanglingLink = "dangling-link"
)

// Result values of a run.
const (
	ResultOK      = "ok"
	ResultCorrupt = "corrupt"
	// ResultFail: the run could not finish (storage unreadable).
	ResultFail = "fail"
)

// Status values of an image.
const (
	StatusOK      = "ok"
	StatusProblem = "problem"
)

// Action is what the operator should do about an image with problems.
const Action = "re-import the image: delete its repository with `dvcr-cleaner delete KIND NAME [-n NS]` and recreate the resource"

// Problem is one thing wrong with one blob.
type Problem struct {
	Blob    digest.Digest `json:"blob"`
	Problem string        `json:"problem"`
	Detail  string        `json:"detail,omitempty"`
}

// Image is the verdict on one tag of one repository. Kind, Namespace and
// Name are set for the repositories of managed resources (cvi/, vi/<ns>/,
// vd/<ns>/). Tag is empty for problems of a repository's links that no
// tag reaches.
type Image struct {
	Kind       string    `json:"kind,omitempty"`
	Namespace  string    `json:"namespace,omitempty"`
	Name       string    `json:"name,omitempty"`
	Repository string    `json:"repository"`
	Tag        string    `json:"tag"`
	Status     string    `json:"status"`
	Problems   []Problem `json:"problems,omitempty"`
	Action     string    `json:"action,omitempty"`
}

// Result is the record of one verification run.
type Result struct {
	Result       string    `json:"result"`
	Trigger      string    `json:"trigger"` // manual, schedule
	StartedAt    time.Time `json:"startedAt"`
	FinishedAt   time.Time `json:"finishedAt"`
	BlobsChecked int       `json:"blobsChecked"`
	BytesRead    int64     `json:"bytesRead"`
	Images       []Image   `json:"images"`
	// Unreferenced are problems of blobs no repository links (the
	// garbage collector removes them; no image is affected).
	Unreferenced []Problem `json:"unreferenced,omitempty"`
	Error        string    `json:"error,omitempty"`
}

// OK reports whether everything checked was sound.
func (r *Result) OK() bool { return r.Result == ResultOK }

// ProblemCount is the number of distinct (blob, problem) pairs found, what
// dvcr_verify_corrupt_blobs exports.
func (r *Result) ProblemCount() int {
	seen := map[Problem]struct{}{}
	for _, img := range r.Images {
		for _, p := range img.Problems {
			seen[Problem{Blob: p.Blob, Problem: p.Problem}] = struct{}{}
		}
	}
	for _, p := range r.Unreferenced {
		seen[Problem{Blob: p.Blob, Problem: p.Problem}] = struct{}{}
	}
	return len(seen)
}

// ImagesWithProblems counts the images that are not ok.
func (r *Result) ImagesWithProblems() int {
	n := 0
	for _, img := range r.Images {
		if img.Status != StatusOK {
			n++
		}
	}
	return n
}

// key tells one record from another: runs of two processes do not start
// within the same nanosecond.
func (r *Result) key() string {
	return r.Trigger + " " + r.StartedAt.UTC().Format(time.RFC3339Nano) + " " + r.FinishedAt.UTC().Format(time.RFC3339Nano)
}
